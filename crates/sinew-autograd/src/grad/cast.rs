//! dtype conversion. Saved: the input dtype.

use sinew_tensor::{DType, Error, Result};

use crate::{Save, Var};

impl Var {
    /// Converts to another float dtype; the gradient is converted back. Mixed precision uses this.
    pub fn to_dtype(&self, dtype: DType) -> Result<Var> {
        if !dtype.is_float() && self.requires_grad() {
            return Err(Error::UnsupportedDType {
                op: "to_dtype (a tracked tensor can only become a float)",
                dtype,
            });
        }
        let out = self.tensor().to_dtype(dtype)?;
        Ok(Var::from_op(
            out,
            "to_dtype",
            &[self],
            Save::NOTHING,
            |ctx, g| Ok(vec![Some(g.to_dtype(ctx.input_dtype(0))?)]),
        ))
    }
}
