//! Dropout (elements) and Dropout1d/2d/3d (whole channels): inverted scaling by `1 / (1 - p)` in
//! training, the identity in evaluation. Masks come from the seeded default generator's
//! counter-based stream (`Generator::keep_mask`): drawn on the input's device, and the same on
//! the CPU and a GPU for the same seed.

use sinew_tensor::{Error, Result, Tensor, with_default_generator};

use crate::{Mode, Module, Visit, summary};

/// Zeroes elements with probability `p` and scales the rest by `1 / (1 - p)` when `training`
/// (PyTorch's `F.dropout`). `mask_shape` broadcasts over `x` (channel dropout uses `[n, c, 1,
/// 1]`).
fn dropout_with_mask(x: &Tensor, p: f64, training: bool, mask_shape: Vec<usize>) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(
            "dropout",
            format!("probability has to be between 0 and 1, but got {p}"),
        ));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    if p == 1.0 {
        return x.mul_scalar(0.0);
    }
    let keep = with_default_generator(|g| g.keep_mask(mask_shape, 1.0 - p, x.dtype(), x.device()))?;
    x.mul(&keep.mul_scalar(1.0 / (1.0 - p))?)
}

/// Element dropout (PyTorch's `F.dropout`).
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    dropout_with_mask(x, p, training, x.dims().to_vec())
}

/// Channel dropout of `[n, c, ...]` (PyTorch's `F.dropout2d`).
pub fn dropout2d(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    if x.rank() < 2 {
        return Err(Error::invalid(
            "dropout2d",
            format!("expects [n, c, ...], got {}", x.shape()),
        ));
    }
    let mut shape = vec![1; x.rank()];
    shape[..2].copy_from_slice(&x.dims()[..2]);
    dropout_with_mask(x, p, training, shape)
}

/// Channel dropout of `[n, c, l]` or one unbatched `[c, l]` (PyTorch's `F.dropout1d`): whole
/// channels zeroed.
pub fn dropout1d(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    match x.rank() {
        2 => dropout2d(&x.unsqueeze(0)?, p, training)?.squeeze(0),
        3 => dropout2d(x, p, training),
        _ => Err(Error::invalid(
            "dropout1d",
            format!("expects [n, c, l] or [c, l], got {}", x.shape()),
        )),
    }
}

/// Channel dropout of `[n, c, d, h, w]` or one unbatched `[c, d, h, w]` (PyTorch's
/// `F.dropout3d`); other ranks as [`dropout2d`] takes them, as PyTorch's does.
pub fn dropout3d(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    if x.rank() == 4 {
        dropout2d(&x.unsqueeze(0)?, p, training)?.squeeze(0)
    } else {
        dropout2d(x, p, training)
    }
}

/// A dropout layer: a probability and a training flag around one of the functions above.
macro_rules! dropout_layer {
    ($(#[$doc:meta])* $name:ident, $f:ident) => {
        $(#[$doc])*
        pub struct $name {
            /// Drop probability (default 0.5).
            pub p: f64,
            /// Training flag.
            pub mode: Mode,
        }

        impl $name {
            /// Drop probability `p`.
            pub fn new(p: f64) -> Self {
                $name {
                    p,
                    mode: Mode::new(),
                }
            }
        }

        impl Module for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                let y = $f(x, self.p, self.mode.is_training())?;
                summary::note(self, &y);
                Ok(y)
            }

            fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
                v.mode(&self.mode);
            }
        }
    };
}

dropout_layer!(
    /// Element dropout layer (PyTorch's `nn.Dropout`).
    Dropout,
    dropout
);
dropout_layer!(
    /// Channel dropout layer over `[n, c, l]` or `[c, l]` (PyTorch's `nn.Dropout1d`).
    Dropout1d,
    dropout1d
);
dropout_layer!(
    /// Channel dropout layer over `[n, c, ...]` (PyTorch's `nn.Dropout2d`).
    Dropout2d,
    dropout2d
);
dropout_layer!(
    /// Channel dropout layer over `[n, c, d, h, w]` or `[c, d, h, w]` (PyTorch's `nn.Dropout3d`).
    Dropout3d,
    dropout3d
);

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, manual_seed};

    use super::*;
    use crate::ModuleExt;

    /// Whole channels: every row of an unbatched `[c, l]` (Dropout1d) and every `[d, h, w]`
    /// block of an unbatched `[c, d, h, w]` (Dropout3d) is all 0 or all `1 / (1 - p)`, with both
    /// kinds present; evaluation is the identity; other ranks are errors for Dropout1d.
    #[test]
    fn channel_dropouts_zero_whole_channels_of_unbatched_inputs() -> Result<()> {
        manual_seed(11);
        let cpu = Device::cpu();
        let p = 0.5;
        for (layer, shape) in [
            (Box::new(Dropout1d::new(p)) as Box<dyn Module>, vec![64, 5]),
            (Box::new(Dropout3d::new(p)), vec![64, 2, 2, 3]),
        ] {
            let x = Tensor::ones(shape.clone(), DType::F32, &cpu)?;
            let y = layer.forward(&x)?.to_vec::<f32>()?;
            let per = y.len() / 64;
            let mut kept = 0;
            for channel in y.chunks(per) {
                let first = channel[0];
                assert!(first == 0.0 || first == 2.0, "{shape:?}: {first}");
                assert!(
                    channel.iter().all(|&v| v == first),
                    "{shape:?}: {channel:?}"
                );
                kept += usize::from(first == 2.0);
            }
            assert!(kept > 0 && kept < 64, "{shape:?}: {kept} of 64 kept");
            layer.eval();
            assert_eq!(layer.forward(&x)?.to_vec::<f32>()?, vec![1.0; y.len()]);
        }
        let flat = Tensor::ones([4], DType::F32, &cpu)?;
        let err = dropout1d(&flat, p, true).unwrap_err();
        assert!(
            err.to_string().contains("expects [n, c, l] or [c, l]"),
            "{err}"
        );
        Ok(())
    }
}
