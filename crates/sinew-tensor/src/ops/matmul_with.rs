//! Matrix products with an output dtype and a fused bias + activation epilogue
//! ([`Tensor::matmul_with`]). CPU kernel: `cpu/matmul_spec.rs`.

use crate::backend::{Activation, MatmulDims, MatmulSpec};
use crate::{DType, Error, Layout, Result, Shape, Tensor};

/// What [`Tensor::matmul_with`] computes besides the product: `act(a @ b + bias)` written as
/// `out_dtype`. Build it with [`MatmulOptions::new`] and the `with_*` methods; the struct may
/// grow (`#[non_exhaustive]`).
///
/// ```
/// # use sinew_tensor::{Activation, DType, MatmulOptions, Tensor};
/// let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, 4.0], [2, 2])?;
/// let w = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2])?;
/// let b = Tensor::from_vec(vec![0.5f32, 0.5], [2])?;
/// let opts = MatmulOptions::new().with_bias(&b).with_activation(Activation::Relu);
/// assert_eq!(x.matmul_with(&w, opts)?.to_vec::<f32>()?, vec![1.5, 0.0, 3.5, 4.5]);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MatmulOptions<'a> {
    /// Dtype of the output (a float dtype); `None` = the operands' dtype. For f16/bf16
    /// operands `Some(F32)` returns the f32 accumulator without rounding through half precision.
    pub out_dtype: Option<DType>,
    /// A `[n]` bias of the output dtype added to every output row.
    pub bias: Option<&'a Tensor>,
    /// An activation applied last.
    pub activation: Option<Activation>,
    /// With an `out_dtype` wider than the operands': each value rounded to the operands' dtype
    /// last, i.e. the product in the operands' dtype converted to `out_dtype` (default false:
    /// the accumulator itself).
    pub round_to_operands: bool,
}

impl<'a> MatmulOptions<'a> {
    /// A plain product: no dtype change, no epilogue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same options writing `dtype`.
    pub fn with_out_dtype(mut self, dtype: DType) -> Self {
        self.out_dtype = Some(dtype);
        self
    }

    /// The same options adding `bias` (`[n]`, output dtype) to each row.
    pub fn with_bias(mut self, bias: &'a Tensor) -> Self {
        self.bias = Some(bias);
        self
    }

    /// The same options applying `activation` last.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = Some(activation);
        self
    }

    /// The same options rounding each value to the operands' dtype before writing a wider
    /// `out_dtype` ([`MatmulOptions::round_to_operands`]).
    pub fn with_rounding_to_operands(mut self) -> Self {
        self.round_to_operands = true;
        self
    }
}

impl Tensor {
    /// `act(self @ rhs + bias)` as `opts.out_dtype`, with [`Tensor::matmul`]'s shape rules
    /// (1-d promotion, broadcast batch dims), in one backend call where the backend fuses the
    /// epilogue (the CPU and CUDA backends do), else through [`crate::Backend::matmul_unfused`].
    /// With default options it is [`Tensor::matmul`]. Differentiable: with operands of at least
    /// 2 dims and no change of dtype it is recorded as one op (its backward PyTorch's `addmm`
    /// and `relu` rules); otherwise as the composed product, cast, sum and ReLU.
    ///
    /// PyTorch equivalent: `torch.relu(torch.addmm(bias, a, b))` /
    /// `F.linear(x, w.T, bias).relu()`, with `out_dtype` as in `torch._scaled_mm`.
    pub fn matmul_with(&self, rhs: &Tensor, opts: MatmulOptions<'_>) -> Result<Tensor> {
        const OP: &str = "matmul_with";
        if opts.out_dtype.is_none() && opts.bias.is_none() && opts.activation.is_none() {
            return self.matmul(rhs);
        }
        if let Some(cast) = crate::autocast::lowered(&[self, rhs])? {
            // Under autocast the operands run in its dtype; a bias without an explicit output
            // dtype follows the product's.
            let bias = match (opts.bias, opts.out_dtype) {
                (Some(b), None) => Some(crate::autocast::lower_precision(b)?),
                _ => None,
            };
            let opts = MatmulOptions {
                bias: bias.as_ref().or(opts.bias),
                ..opts
            };
            return cast[0].matmul_with(&cast[1], opts);
        }
        let tracked = self.requires_grad()
            || rhs.requires_grad()
            || opts.bias.is_some_and(|b| b.requires_grad());
        if tracked && crate::is_grad_enabled() {
            if opts.out_dtype.is_none_or(|d| d == self.dtype())
                && self.rank() >= 2
                && rhs.rank() >= 2
            {
                // The fused forward, recorded as one op (`grad/matmul.rs`).
                let value = crate::grad::untracked(|| self.matmul_with(rhs, opts))?;
                return Ok(crate::grad::record_matmul_epilogue(
                    value,
                    self,
                    rhs,
                    opts.bias,
                    opts.activation,
                ));
            }
            // Another output dtype or a 1-d operand: compose recorded ops instead (the
            // f16 -> f32 case then rounds the product through the operands' dtype once).
            let mut out = self.matmul(rhs)?;
            if let Some(dtype) = opts.out_dtype {
                out = out.to_dtype(dtype)?;
            }
            if let Some(bias) = opts.bias {
                out = out.add(bias)?;
                if opts.round_to_operands && out.dtype() != self.dtype() {
                    // Rounded last (ReLU commutes with the rounding).
                    out = out.to_dtype(self.dtype())?.to_dtype(bias.dtype())?;
                }
            }
            return match opts.activation {
                Some(Activation::Relu) => out.relu(),
                None => Ok(out),
            };
        }
        self.check_same_device(OP, rhs)?;
        self.check_same_dtype(OP, rhs)?;
        self.check_float(OP)?;
        let out_dtype = opts.out_dtype.unwrap_or(self.dtype());
        if !out_dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op: OP,
                dtype: out_dtype,
            });
        }
        let mismatch = || Error::ShapeMismatch {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
        };
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(mismatch());
        }
        let lhs2 = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let rhs2 = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let (lr, rr) = (lhs2.rank(), rhs2.rank());
        let (m, k) = (lhs2.dims()[lr - 2], lhs2.dims()[lr - 1]);
        let (k2, n) = (rhs2.dims()[rr - 2], rhs2.dims()[rr - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        if let Some(bias) = opts.bias {
            self.check_same_device(OP, bias)?;
            if bias.dtype() != out_dtype {
                return Err(Error::DTypeMismatch {
                    op: "matmul_with (bias)",
                    lhs: out_dtype,
                    rhs: bias.dtype(),
                });
            }
            if bias.dims() != [n] {
                return Err(Error::ShapeMismatch {
                    op: "matmul_with (bias)",
                    lhs: Shape::new([n]),
                    rhs: bias.shape().clone(),
                });
            }
        }
        let batch = Shape::new(lhs2.dims()[..lr - 2].to_vec())
            .broadcast(&Shape::new(rhs2.dims()[..rr - 2].to_vec()), OP)
            .map_err(|_| mismatch())?;
        let with_batch = |t: &Tensor, a: usize, b: usize| -> Result<Layout> {
            let mut dims = batch.dims().to_vec();
            dims.extend([a, b]);
            t.layout().broadcast_to(&Shape::new(dims))
        };
        let (ll, rl) = (with_batch(&lhs2, m, k)?, with_batch(&rhs2, k, n)?);
        let dims = MatmulDims {
            batch: batch.elem_count(),
            m,
            n,
            k,
        };
        let backend = self.device().backend();
        let run = |a: &dyn crate::BackendStorage,
                   b: &dyn crate::BackendStorage,
                   bias: Option<(&dyn crate::BackendStorage, &Layout)>| {
            let mut spec = MatmulSpec::new(dims).with_out_dtype(out_dtype);
            if let Some((s, l)) = bias {
                spec = spec.with_bias(s, l);
            }
            if let Some(act) = opts.activation {
                spec = spec.with_activation(act);
            }
            if opts.round_to_operands {
                spec = spec.with_rounding_to_operands();
            }
            match backend.matmul(a, &ll, b, &rl, &spec) {
                Err(Error::NotImplemented { .. }) => backend.matmul_unfused(a, &ll, b, &rl, &spec),
                other => other,
            }
        };
        let out = match opts.bias {
            Some(bias) => Tensor::with_storages([&lhs2, &rhs2, bias], |[a, b, c]| {
                run(a, b, Some((c, bias.layout())))
            })?,
            None => Tensor::with_storages([&lhs2, &rhs2], |[a, b]| run(a, b, None))?,
        };
        let mut out_dims = batch.dims().to_vec();
        out_dims.extend([m, n]);
        let mut out = Tensor::from_storage(out, out_dims, self.device().clone())?;
        if rhs.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        if self.rank() == 1 {
            out = out.squeeze(-2 + (rhs.rank() == 1) as isize)?;
        }
        Ok(out)
    }
}
