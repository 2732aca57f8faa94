//! Matrix products. Saved: both inputs (each gradient needs the other operand).

use super::untracked;
use crate::{Error, Result, Save, Tensor};

impl Tensor {
    /// Matrix product with `torch.matmul`'s rules (1-d promotion, broadcast batch dims).
    /// Backward: `ga = g @ bᵀ`, `gb = aᵀ @ g`, summed over broadcast batch dims.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(cast) = crate::autocast::lowered(&[self, rhs])? {
            return cast[0].matmul(&cast[1]);
        }
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        // Promote 1-d operands with differentiable views, so the recorded op is always >= 2-d.
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let out = untracked(|| a.matmul_untracked(&b))?;
        let mut out = Tensor::from_op(out, "matmul", &[&a, &b], Save::INPUTS, |ctx, g| {
            let (a, b) = (ctx.input(0)?, ctx.input(1)?);
            let ga = if a.requires_grad() {
                Some(g.matmul(&b.transpose(-2, -1)?)?.sum_to(a.shape())?)
            } else {
                None
            };
            let gb = if b.requires_grad() {
                Some(a.transpose(-2, -1)?.matmul(g)?.sum_to(b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        });
        if rhs.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        if self.rank() == 1 {
            out = out.squeeze(if rhs.rank() == 1 { -1 } else { -2 })?;
        }
        Ok(out)
    }
}
