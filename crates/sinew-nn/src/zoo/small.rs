//! The course's small models: the perceptron (Rosenblatt's rule), logistic regression, the MLP
//! builder and LeNet-5.

use sinew_tensor::{DType, Error, Result, Tensor, no_grad};

use crate::{Conv2d, Conv2dOptions, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, Visit};

/// Rosenblatt's perceptron: `step(w·x + b)` with outputs 0/1, trained by the perceptron rule
/// `w += lr (y - y_hat) x`, `b += lr (y - y_hat)` (no gradients).
pub struct Perceptron {
    /// The affine part (`weight` `[1, in]`, `bias` `[1]`).
    pub linear: Linear,
}

impl Perceptron {
    /// A perceptron over `in_features` inputs, starting from zero weights.
    pub fn new(in_features: usize) -> Result<Self> {
        let linear = Linear::new(in_features, 1)?;
        let _guard = no_grad();
        linear.weight.value().zero_()?;
        if let Some(b) = &linear.bias {
            b.value().zero_()?;
        }
        Ok(Perceptron { linear })
    }

    /// One pass of the perceptron rule over `x` `[n, in]` with 0/1 labels `y` `[n]`, one
    /// sample at a time; returns the number of mistakes made.
    pub fn train_epoch(&self, x: &Tensor, y: &Tensor, lr: f64) -> Result<usize> {
        let n = x.dims().first().copied().unwrap_or(0);
        if x.rank() != 2 || y.dims() != [n] {
            return Err(Error::invalid(
                "Perceptron::train_epoch",
                format!(
                    "expects x [n, in] and y [n], got {} and {}",
                    x.shape(),
                    y.shape()
                ),
            ));
        }
        let labels = y.to_dtype(DType::F64)?.to_vec_f64()?;
        let _guard = no_grad();
        let mut mistakes = 0;
        for (i, &label) in labels.iter().enumerate() {
            let xi = x.narrow(0, i, 1)?;
            let predicted = self.forward(&xi)?.to_dtype(DType::F64)?.to_vec_f64()?[0];
            let err = label - predicted;
            if err != 0.0 {
                mistakes += 1;
                let w = self.linear.weight.value();
                w.axpy_(lr * err, &xi.to_dtype(w.dtype())?)?;
                if let Some(b) = &self.linear.bias {
                    b.value().add_scalar_(lr * err)?;
                }
            }
        }
        Ok(mistakes)
    }
}

impl Module for Perceptron {
    /// 0/1 predictions `[n, 1]` (step at 0 gives 1, as `w·x + b >= 0`).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear.forward(x)?.step(1.0)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("linear", &self.linear);
    }
}

/// Multinomial logistic regression: one linear layer producing logits (train it with
/// `cross_entropy`, or `binary_cross_entropy_with_logits` for one output).
pub fn logistic_regression(in_features: usize, num_classes: usize) -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Flatten::new())
        .append(Linear::new(in_features, num_classes)?))
}

/// A multilayer perceptron `sizes[0] -> ... -> sizes[last]`: Flatten, then Linear layers with
/// ReLU between them (none after the last). `mlp(&[784, 512, 512, 10])` has keys `1.weight`,
/// `3.weight`, `5.weight` like the equivalent `nn.Sequential`.
pub fn mlp(sizes: &[usize]) -> Result<Sequential> {
    if sizes.len() < 2 {
        return Err(Error::invalid(
            "mlp",
            "needs at least an input and an output size",
        ));
    }
    let mut net = Sequential::new().append(Flatten::new());
    for (i, pair) in sizes.windows(2).enumerate() {
        net = net.append(Linear::new(pair[0], pair[1])?);
        if i + 2 < sizes.len() {
            net = net.append(ReLU);
        }
    }
    Ok(net)
}

/// LeNet-5 for 28x28 inputs (MNIST): two 5x5 convolutions (the first padded to keep 28x28),
/// ReLU and 2x2 max pooling, then 400 -> 120 -> 84 -> classes. 61,706 parameters for 10
/// classes.
pub fn lenet5(num_classes: usize) -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Conv2d::with_options(
            1,
            6,
            (5, 5),
            Conv2dOptions::default().padding(2),
        )?)
        .append(ReLU)
        .append(MaxPool2d::new(2))
        .append(Conv2d::new(6, 16, 5)?)
        .append(ReLU)
        .append(MaxPool2d::new(2))
        .append(Flatten::new())
        .append(Linear::new(16 * 5 * 5, 120)?)
        .append(ReLU)
        .append(Linear::new(120, 84)?)
        .append(ReLU)
        .append(Linear::new(84, num_classes)?))
}
