//! `Linear` (`y = x Wᵀ + b`, weight `[out, in]` as in PyTorch) and its functional form.

use sinew_tensor::{Activation, DType, Device, MatmulOptions, Parameter, Result, Tensor, autocast};

use crate::{Module, Visit, init, summary};

/// `y = x Wᵀ + b` over the last dimension (PyTorch's `F.linear`). Under autocast all three
/// run in its dtype, as PyTorch's `linear` does.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_then(x, weight, bias, None)
}

/// [`linear`] followed by `activation`, which runs in the product's epilogue (one kernel, one
/// autograd node) for inputs of rank 2 and more; the values of the two ops.
pub fn linear_then(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    activation: Option<Activation>,
) -> Result<Tensor> {
    // Cast before transposing: the weight's gradient then comes out of the cast's backward as
    // a dense tensor (a transposed view would cost the loss scaler a copy per weight).
    let w = autocast::lower_precision(weight)?.t()?;
    let b = bias.map(autocast::lower_precision).transpose()?;
    if x.rank() < 2 {
        // A vector input: the product, then the bias and the activation as ops of their own.
        let y = x.matmul(&w)?;
        let y = match &b {
            Some(b) => y.add(b)?,
            None => y,
        };
        return match activation {
            Some(Activation::Relu) => y.relu(),
            Some(other) => Err(sinew_tensor::Error::invalid(
                "linear",
                format!("no activation {other:?} for a vector input"),
            )),
            None => Ok(y),
        };
    }
    // PyTorch's `addmm`: the bias (and the activation) in the product's epilogue (one kernel),
    // one op for autograd.
    let mut opts = MatmulOptions::new();
    if let Some(b) = &b {
        opts = opts.with_bias(b);
    }
    if let Some(activation) = activation {
        opts = opts.with_activation(activation);
    }
    x.matmul_with(&w, opts)
}

/// Options of [`Linear`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearConfig {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Whether there is a bias (default true).
    pub bias: bool,
}

impl LinearConfig {
    /// `in_features -> out_features` with a bias.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
        }
    }
}

/// A fully connected layer: `weight` `[out, in]`, `bias` `[out]`, initialised as PyTorch does
/// (uniform on `+-1/sqrt(in)`).
///
/// ```
/// use sinew_nn::{Linear, Module, ModuleExt};
/// use sinew_tensor::{DType, Device, Tensor};
///
/// let fc = Linear::new(784, 10)?;
/// let state = fc.state_dict();
/// assert_eq!(state.keys().collect::<Vec<_>>(), ["weight", "bias"]); // PyTorch's names
/// assert_eq!(state.get("weight").map(|w| w.dims().to_vec()), Some(vec![10, 784])); // [out, in]
/// let y = fc.forward(&Tensor::zeros([32, 784], DType::F32, &Device::cpu())?)?;
/// assert_eq!(y.dims(), &[32, 10]);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Parameter,
    /// `[out_features]`, if enabled.
    pub bias: Option<Parameter>,
}

impl Linear {
    /// An f32 layer on the CPU with a bias.
    pub fn new(in_features: usize, out_features: usize) -> Result<Linear> {
        Linear::with_config(LinearConfig::new(in_features, out_features))
    }

    /// A layer from a config (f32, CPU; move it with `to_device`).
    pub fn with_config(cfg: LinearConfig) -> Result<Linear> {
        let cpu = Device::cpu();
        let weight = Tensor::zeros([cfg.out_features, cfg.in_features], DType::F32, &cpu)?;
        init::default_weight_(&weight)?;
        let bias = if cfg.bias {
            let b = Tensor::zeros([cfg.out_features], DType::F32, &cpu)?;
            init::default_bias_(&b, cfg.in_features)?;
            Some(Parameter::new(b))
        } else {
            None
        };
        Ok(Linear {
            weight: Parameter::new(weight),
            bias,
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(Parameter::value);
        let y = linear(x, &self.weight.value(), bias.as_ref())?;
        summary::note(self, &y);
        Ok(y)
    }

    /// ReLU in the matrix product's epilogue.
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(Parameter::value);
        let y = linear_then(
            x,
            &self.weight.value(),
            bias.as_ref(),
            Some(Activation::Relu),
        )?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}
