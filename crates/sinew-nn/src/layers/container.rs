//! Containers: `Sequential` (children named `0`, `1`, ... by position, parameterless ones
//! included, as in PyTorch) and `Concat` (runs branches on one input and joins their outputs).

use sinew_tensor::{Error, Result, Tensor};

use crate::{Module, Visit, summary};

/// Runs its children in order. Children keep their positional index as their name even when
/// they have no parameters, so `state_dict` keys match PyTorch's `nn.Sequential`.
///
/// ```
/// use sinew_nn::{Linear, Module, ModuleExt, ReLU, Sequential};
/// use sinew_tensor::{DType, Device, Tensor};
///
/// let mlp = Sequential::new()
///     .append(Linear::new(4, 8)?)
///     .append(ReLU)
///     .append(Linear::new(8, 2)?);
/// let state = mlp.state_dict();
/// assert_eq!(state.keys().collect::<Vec<_>>(), ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// assert_eq!(mlp.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
/// let y = mlp.forward(&Tensor::ones([5, 4], DType::F32, &Device::cpu())?)?;
/// assert_eq!(y.dims(), &[5, 2]);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer (builder style).
    pub fn append(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    /// Replaces layer `index` (swap a classifier head), returning the old one.
    pub fn replace(&mut self, index: usize, layer: Box<dyn Module>) -> Result<Box<dyn Module>> {
        let len = self.layers.len();
        let slot = self.layers.get_mut(index).ok_or(Error::IndexOutOfBounds {
            op: "Sequential::replace",
            index: index as i64,
            size: len,
        })?;
        Ok(std::mem::replace(slot, layer))
    }

    /// Layer `index`, if any.
    pub fn get(&self, index: usize) -> Option<&dyn Module> {
        self.layers.get(index).map(|b| b.as_ref())
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    /// Runs the layers in order; a layer followed by [`ReLU`](crate::ReLU) runs as one step,
    /// [`Module::forward_relu`] (the same values; a fused kernel where the layer has one).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        let mut layers = self.layers.iter().peekable();
        while let Some(layer) = layers.next() {
            match layers.next_if(|next| next.is_relu()) {
                Some(relu) => {
                    y = layer.forward_relu(&y)?;
                    summary::note(relu.as_ref(), &y);
                }
                None => y = layer.forward(&y)?,
            }
        }
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        for (i, layer) in self.layers.iter().enumerate() {
            v.child(&i.to_string(), layer.as_ref());
        }
    }
}

/// Runs every branch on the same input and concatenates the outputs along `dim` (an
/// Inception-style block; PyTorch users write this in `forward` with `torch.cat`).
pub struct Concat {
    branches: Vec<Box<dyn Module>>,
    dim: isize,
}

impl Concat {
    /// No branches yet, joining along `dim`.
    pub fn new(dim: isize) -> Self {
        Concat {
            branches: Vec::new(),
            dim,
        }
    }

    /// Adds a branch (builder style).
    pub fn append(mut self, branch: impl Module + 'static) -> Self {
        self.branches.push(Box::new(branch));
        self
    }
}

impl Module for Concat {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let outs = self
            .branches
            .iter()
            .map(|b| b.forward(x))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&outs, self.dim)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        for (i, b) in self.branches.iter().enumerate() {
            v.child(&i.to_string(), b.as_ref());
        }
    }
}
