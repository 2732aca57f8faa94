//! The parameters as one flat vector: their gradients gathered in order (zeros for a parameter
//! without one), an update added slice by slice, and the loss closure's evaluations (PyTorch's
//! `_gather_flat_grad`, `_add_grad`, `_clone_param`, `_set_param`, `_directional_evaluate`).

use sinew_tensor::{DType, Device, Error, Result, Tensor, enable_grad};

use crate::distinct::check_distinct;
use crate::optimizer::NamedParameter;

/// The closure a step re-evaluates: computes the loss and calls `backward()` on it.
pub(crate) type Closure<'c> = dyn FnMut() -> Result<Tensor> + 'c;

/// The parameters of one L-BFGS, seen as one vector.
pub(crate) struct Flat<'a> {
    params: &'a [NamedParameter],
    maximize: bool,
    dtype: DType,
    device: Device,
}

impl<'a> Flat<'a> {
    /// Checks that `params` are distinct and share one dtype and device (what one flat vector
    /// needs; PyTorch wants one device too).
    pub(crate) fn new(params: &'a [NamedParameter], maximize: bool) -> Result<Flat<'a>> {
        check_distinct(params)?;
        let first = params
            .first()
            .ok_or_else(|| Error::invalid("LBFGS", "no parameters"))?
            .param
            .value();
        for p in params {
            let v = p.param.value();
            if v.dtype() != first.dtype() || v.device() != first.device() {
                return Err(Error::invalid(
                    "LBFGS",
                    format!(
                        "`{}` is {:?} on {:?} but `{}` is {:?} on {:?}: L-BFGS keeps the \
                         parameters as one vector, of one dtype on one device",
                        p.name,
                        v.dtype(),
                        v.device(),
                        params[0].name,
                        first.dtype(),
                        first.device()
                    ),
                ));
            }
        }
        Ok(Flat {
            params,
            maximize,
            dtype: first.dtype(),
            device: first.device().clone(),
        })
    }

    /// The number of entries of the vector.
    pub(crate) fn len(&self) -> usize {
        self.params
            .iter()
            .map(|p| p.param.value().elem_count())
            .sum()
    }

    /// The dtype of the vector.
    pub(crate) fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device of the vector.
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// Clears the gradients, runs the closure with recording on and returns its loss and the
    /// loss as a number (negated when maximising).
    pub(crate) fn evaluate(&self, closure: &mut Closure<'_>) -> Result<(Tensor, f64)> {
        for p in self.params {
            p.param.zero_grad();
        }
        let loss = {
            let _recording = enable_grad();
            closure()?
        };
        if loss.elem_count() != 1 {
            return Err(Error::invalid(
                "LBFGS",
                format!(
                    "the closure must return the loss, one number; it returned a tensor of \
                     shape {}",
                    loss.shape()
                ),
            ));
        }
        let value = loss.item()?;
        Ok((loss, if self.maximize { -value } else { value }))
    }

    /// The gradients as one vector, in parameter order (negated when maximising).
    pub(crate) fn gather_grad(&self) -> Result<Tensor> {
        let mut views = Vec::with_capacity(self.params.len());
        for p in self.params {
            let value = p.param.value();
            let view = match p.param.grad() {
                Some(g) if g.shape() == value.shape() => g.flatten_all()?,
                Some(g) => {
                    return Err(Error::invalid(
                        "LBFGS",
                        format!(
                            "the gradient of `{}` is {}, the parameter {}",
                            p.name,
                            g.shape(),
                            value.shape()
                        ),
                    ));
                }
                None => Tensor::zeros([value.elem_count()], self.dtype, &self.device)?,
            };
            views.push(view.to_dtype(self.dtype)?);
        }
        let flat = Tensor::cat(&views, 0)?;
        if self.maximize { flat.neg() } else { Ok(flat) }
    }

    /// `params += t * update`, slice by slice.
    pub(crate) fn add_scaled(&self, t: f64, update: &Tensor) -> Result<()> {
        let mut offset = 0;
        for p in self.params {
            let value = p.param.value();
            let n = value.elem_count();
            value.axpy_(t, &update.narrow(0, offset, n)?.reshape(value.dims())?)?;
            offset += n;
        }
        Ok(())
    }

    /// A copy of each parameter's value.
    pub(crate) fn values(&self) -> Result<Vec<Tensor>> {
        self.params
            .iter()
            .map(|p| p.param.value().force_contiguous())
            .collect()
    }

    /// Puts back values taken by [`values`](Self::values).
    pub(crate) fn set_values(&self, values: &[Tensor]) -> Result<()> {
        for (p, v) in self.params.iter().zip(values) {
            p.param.value().copy_(v)?;
        }
        Ok(())
    }

    /// The loss and flat gradient at `x + t * d`; the parameters are `x` again afterwards.
    pub(crate) fn directional_evaluate(
        &self,
        closure: &mut Closure<'_>,
        x: &[Tensor],
        t: f64,
        d: &Tensor,
    ) -> Result<(f64, Tensor)> {
        self.add_scaled(t, d)?;
        let evaluated = self
            .evaluate(closure)
            .and_then(|(_, loss)| Ok((loss, self.gather_grad()?)));
        // Back to x even when the closure failed, so an error leaves the parameters as they were.
        self.set_values(x)?;
        evaluated
    }
}

/// `a . b` as a number.
pub(crate) fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    a.mul(b)?.sum_all()?.item()
}

/// The largest `|v_i|`.
pub(crate) fn abs_max(v: &Tensor) -> Result<f64> {
    v.abs()?.max(&[], false)?.item()
}

/// `sum |v_i|`.
pub(crate) fn abs_sum(v: &Tensor) -> Result<f64> {
    v.abs()?.sum_all()?.item()
}
