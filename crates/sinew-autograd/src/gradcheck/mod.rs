//! Finite-difference gradient checking.
//!
//! [`gradcheck`] compares the gradients autograd computes with central differences in f64.
//! `cases` (feature `testing`) holds one proptest-driven check per differentiable entry of sinew-tensor's op table;
//! `cargo xtask gradcheck` runs them all, and later crates (nn layers, losses) add their own.

#[cfg(feature = "testing")]
pub mod cases;
#[cfg(feature = "testing")]
pub use strategy::OpOutcome;
#[cfg(feature = "testing")]
pub mod strategy;

use sinew_tensor::{DType, Generator, Result, Tensor};

use sinew_tensor::no_grad;

/// Tolerances and step of [`gradcheck`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of the numeric gradient's magnitude).
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// What a [`gradcheck`] run found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GradcheckReport {
    /// Number of gradient entries compared.
    pub checked: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_err: f64,
    /// Largest `|analytic - numeric| / |numeric|` (over entries with `|numeric| > 1e-8`).
    pub max_rel_err: f64,
    /// The first entry out of tolerance, described, if any.
    pub failure: Option<String>,
}

impl GradcheckReport {
    /// True when every entry was within tolerance.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Checks the gradients of `f` at `inputs` against central differences, in f64.
///
/// A non-scalar output is reduced with fixed random weights (a vector-Jacobian product), so
/// every output element is checked. Inputs are converted to f64 first.
///
/// ```
/// use sinew_autograd::gradcheck::{gradcheck, GradcheckOptions};
/// use sinew_tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0], [3])?;
/// let report = gradcheck(|v| v[0].tanh()?.mul(&v[0]), &[x], GradcheckOptions::default())?;
/// assert!(report.passed());
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    options: GradcheckOptions,
) -> Result<GradcheckReport> {
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64)?.force_contiguous())
        .collect::<Result<_>>()?;
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.clone().requires_grad_()).collect();
    let out = f(&leaves)?;
    let weights =
        Generator::new(0x6AD).uniform(out.shape().clone(), 0.5, 1.5, DType::F64, out.device())?;
    let weighted =
        |v: &Tensor| -> Result<f64> { v.to_dtype(DType::F64)?.mul(&weights)?.sum_all()?.item() };
    let mut report = GradcheckReport::default();
    if out.requires_grad() {
        out.mul(&weights.to_dtype(out.dtype())?)?
            .sum_all()?
            .backward()?;
    }
    for (i, (input, leaf)) in inputs.iter().zip(&leaves).enumerate() {
        let analytic = match leaf.grad() {
            Some(g) => g.to_dtype(DType::F64)?.to_vec::<f64>()?,
            None => vec![0.0; input.elem_count()],
        };
        let base = input.to_vec::<f64>()?;
        for j in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut values = base.clone();
                values[j] += delta;
                let shifted = Tensor::from_vec_on(values, input.shape().clone(), input.device())?;
                let args: Vec<Tensor> = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, t)| if k == i { shifted.clone() } else { t.clone() })
                    .collect();
                let _guard = no_grad();
                weighted(&f(&args)?)
            };
            let numeric = (eval(options.eps)? - eval(-options.eps)?) / (2.0 * options.eps);
            let err = (analytic[j] - numeric).abs();
            report.checked += 1;
            report.max_abs_err = report.max_abs_err.max(err);
            if numeric.abs() > 1e-8 {
                report.max_rel_err = report.max_rel_err.max(err / numeric.abs());
            }
            let ok = err <= options.atol + options.rtol * numeric.abs();
            if (!ok || !analytic[j].is_finite()) && report.failure.is_none() {
                report.failure = Some(format!(
                    "input {i} (shape {}) element {j}: analytic {} vs numeric {numeric}",
                    input.shape(),
                    analytic[j]
                ));
            }
        }
    }
    Ok(report)
}
