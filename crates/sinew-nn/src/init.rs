//! Weight initialisation, as `torch.nn.init`: each function fills a tensor in place (under
//! `no_grad`, so it works on a parameter's value) from Sinew's seeded default generator
//! (`manual_seed`).

use sinew_tensor::{Error, Generator, Result, Tensor, no_grad, with_default_generator};

/// Which fan Kaiming initialisation preserves (PyTorch's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FanMode {
    /// Preserves the variance of the forward pass (PyTorch's default).
    #[default]
    FanIn,
    /// Preserves the variance of the backward pass.
    FanOut,
}

/// The recommended gain for a nonlinearity (PyTorch's `calculate_gain` table): 1 for `linear`,
/// the `conv*` names and `sigmoid`; 5/3 for `tanh`; sqrt(2) for `relu`; sqrt(2 / (1 + slope^2))
/// for `leaky_relu` (slope `param`, default 0.01); 3/4 for `selu`. Any other name is an error.
pub fn calculate_gain(nonlinearity: &str, param: Option<f64>) -> Result<f64> {
    const LINEAR: [&str; 8] = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    ];
    Ok(match nonlinearity {
        n if LINEAR.contains(&n) => 1.0,
        "tanh" => 5.0 / 3.0,
        "relu" => 2f64.sqrt(),
        "leaky_relu" => {
            let slope = param.unwrap_or(0.01);
            if !slope.is_finite() {
                return Err(Error::invalid(
                    "calculate_gain",
                    format!("negative slope {slope} is not a finite number"),
                ));
            }
            (2.0 / (1.0 + slope * slope)).sqrt()
        }
        "selu" => 0.75,
        other => {
            return Err(Error::invalid(
                "calculate_gain",
                format!(
                    "unsupported nonlinearity {other:?} (known: linear, conv1d/2d/3d, \
                     conv_transpose1d/2d/3d, sigmoid, tanh, relu, leaky_relu, selu)"
                ),
            ));
        }
    })
}

/// `(fan_in, fan_out)` of a weight: `[out, in, k...]` gives `(in * prod(k), out * prod(k))`.
/// Errors for fewer than 2 dimensions, as in PyTorch.
pub fn fans(t: &Tensor) -> Result<(usize, usize)> {
    let dims = t.dims();
    if dims.len() < 2 {
        return Err(Error::invalid(
            "init",
            format!(
                "fan in and fan out need a tensor of at least 2 dimensions, got shape {}",
                t.shape()
            ),
        ));
    }
    let receptive: usize = dims[2..].iter().product();
    Ok((dims[1] * receptive, dims[0] * receptive))
}

fn fan(t: &Tensor, mode: FanMode) -> Result<usize> {
    let (fan_in, fan_out) = fans(t)?;
    let fan = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    if fan == 0 {
        return Err(Error::invalid(
            "init",
            format!(
                "cannot initialise a tensor with a zero fan (shape {})",
                t.shape()
            ),
        ));
    }
    Ok(fan)
}

/// Overwrites `t` with values drawn by `draw` from the default generator.
fn fill_from(t: &Tensor, draw: impl FnOnce(&mut Generator) -> Result<Tensor>) -> Result<()> {
    let values = with_default_generator(draw)?;
    let _guard = no_grad();
    t.copy_(&values)
}

/// Fills with `value`.
pub fn constant_(t: &Tensor, value: f64) -> Result<()> {
    let _guard = no_grad();
    t.fill_(value)
}

/// Fills with zeros.
pub fn zeros_(t: &Tensor) -> Result<()> {
    constant_(t, 0.0)
}

/// Fills with ones.
pub fn ones_(t: &Tensor) -> Result<()> {
    constant_(t, 1.0)
}

/// Uniform on `[low, high)`.
pub fn uniform_(t: &Tensor, low: f64, high: f64) -> Result<()> {
    fill_from(t, |g| {
        g.uniform(t.shape().clone(), low, high, t.dtype(), t.device())
    })
}

/// Normal with `mean` and `std`.
pub fn normal_(t: &Tensor, mean: f64, std: f64) -> Result<()> {
    fill_from(t, |g| {
        g.normal(t.shape().clone(), mean, std, t.dtype(), t.device())
    })
}

/// Normal with `mean` and `std`, redrawn outside the absolute bounds `[a, b]` (PyTorch's
/// `trunc_normal_`, defaults `a = -2`, `b = 2`: absolute values, not multiples of `std`).
pub fn trunc_normal_(t: &Tensor, mean: f64, std: f64, a: f64, b: f64) -> Result<()> {
    fill_from(t, |g| {
        g.truncated_normal(t.shape().clone(), mean, std, a, b, t.dtype(), t.device())
    })
}

/// Glorot uniform: bound `gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform_(t: &Tensor, gain: f64) -> Result<()> {
    let (fan_in, fan_out) = fans(t)?;
    let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
    let bound = 3f64.sqrt() * std;
    uniform_(t, -bound, bound)
}

/// Glorot normal: std `gain * sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal_(t: &Tensor, gain: f64) -> Result<()> {
    let (fan_in, fan_out) = fans(t)?;
    normal_(t, 0.0, gain * (2.0 / (fan_in + fan_out) as f64).sqrt())
}

/// The std Kaiming initialisation uses: `gain(nonlinearity, a) / sqrt(fan)`.
fn kaiming_std(t: &Tensor, a: f64, mode: FanMode, nonlinearity: &str) -> Result<f64> {
    let gain = calculate_gain(nonlinearity, Some(a))?;
    Ok(gain / (fan(t, mode)? as f64).sqrt())
}

/// He uniform: bound `sqrt(3) * gain / sqrt(fan)` (PyTorch's `kaiming_uniform_`; `a` is the
/// leaky-ReLU slope, used when `nonlinearity` is `leaky_relu`).
pub fn kaiming_uniform_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: &str) -> Result<()> {
    let bound = 3f64.sqrt() * kaiming_std(t, a, mode, nonlinearity)?;
    uniform_(t, -bound, bound)
}

/// He normal: std `gain / sqrt(fan)` (PyTorch's `kaiming_normal_`).
pub fn kaiming_normal_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: &str) -> Result<()> {
    normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity)?)
}

/// The std of a standard normal truncated to [-2, 2] (Keras' correction constant).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

/// Keras' `he_normal` (`VarianceScaling(2.0, "fan_in", "truncated_normal")`): a normal truncated
/// at two standard deviations whose std is raised so that the truncated values keep the
/// variance `2 / fan_in`.
pub fn he_normal_truncated_(t: &Tensor) -> Result<()> {
    let std = (2.0 / fan(t, FanMode::FanIn)? as f64).sqrt() / TRUNCATED_STD;
    trunc_normal_(t, 0.0, std, -2.0 * std, 2.0 * std)
}

/// The initialisation PyTorch gives Linear and Conv weights: `kaiming_uniform_(a = sqrt(5))`,
/// that is uniform on `+-1 / sqrt(fan_in)`.
pub fn default_weight_(t: &Tensor) -> Result<()> {
    kaiming_uniform_(t, 5f64.sqrt(), FanMode::FanIn, "leaky_relu")
}

/// The initialisation PyTorch gives Linear and Conv biases: uniform on `+-1 / sqrt(fan_in)`
/// of the layer's weight (0 bound when the fan is 0).
pub fn default_bias_(bias: &Tensor, fan_in: usize) -> Result<()> {
    let bound = if fan_in > 0 {
        1.0 / (fan_in as f64).sqrt()
    } else {
        0.0
    };
    uniform_(bias, -bound, bound)
}

/// A (semi-)orthogonal matrix times `gain` (PyTorch's `orthogonal_`): the tensor viewed as
/// `[dims[0], rest]`; its rows (or columns, whichever are fewer) are orthonormal. Drawn as the
/// Q factor of a Gaussian matrix, with signs fixed so that R has a positive diagonal.
pub fn orthogonal_(t: &Tensor, gain: f64) -> Result<()> {
    let dims = t.dims();
    if dims.len() < 2 {
        return Err(Error::invalid(
            "orthogonal_",
            format!("needs at least 2 dimensions, got shape {}", t.shape()),
        ));
    }
    let rows = dims[0];
    let cols = t.elem_count() / rows.max(1);
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    // Orthonormalise the columns of a tall matrix, then transpose back if it was wide.
    let (tall_rows, tall_cols) = (rows.max(cols), rows.min(cols));
    let gaussian = with_default_generator(|g| {
        g.randn(
            [tall_rows, tall_cols],
            sinew_tensor::DType::F64,
            &sinew_tensor::Device::cpu(),
        )
    })?
    .to_vec::<f64>()?;
    let q = gram_schmidt_columns(gaussian, tall_rows, tall_cols);
    let mut out = vec![0f64; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if rows >= cols {
                q[r * tall_cols + c]
            } else {
                q[c * tall_cols + r]
            };
            out[r * cols + c] = gain * v;
        }
    }
    let values = Tensor::from_vec(out, t.shape().clone())?
        .to_dtype(t.dtype())?
        .to_device(t.device())?;
    let _guard = no_grad();
    t.copy_(&values)
}

/// Modified Gram-Schmidt on the columns of a row-major `rows x cols` matrix (`rows >= cols`):
/// the Q of a QR factorisation whose R has a positive diagonal.
fn gram_schmidt_columns(mut a: Vec<f64>, rows: usize, cols: usize) -> Vec<f64> {
    for j in 0..cols {
        for k in 0..j {
            let dot: f64 = (0..rows).map(|r| a[r * cols + j] * a[r * cols + k]).sum();
            for r in 0..rows {
                a[r * cols + j] -= dot * a[r * cols + k];
            }
        }
        let norm = (0..rows)
            .map(|r| a[r * cols + j].powi(2))
            .sum::<f64>()
            .sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        for r in 0..rows {
            a[r * cols + j] *= scale;
        }
    }
    a
}
