//! Collation: a list of samples becomes one input tensor and one target tensor.

use rayon::prelude::*;
use sinew_tensor::{Device, Tensor};

use crate::alloc::{checked_numel, try_filled};
use crate::error::{DataError, Result};
use crate::sample::{Sample, Target};

/// A collated batch.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Inputs: `[N, C, H, W]` f32 for images, `[N, F]` f32 for features.
    pub inputs: Tensor,
    /// Targets: `[N]` i64 classes, or `[N]` f32 values.
    pub targets: Tensor,
    /// The dataset index of each row.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True for a batch with no examples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The batch with both tensors copied to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Batch> {
        Ok(Batch {
            inputs: self.inputs.to_device(device)?,
            targets: self.targets.to_device(device)?,
            indices: self.indices.clone(),
        })
    }
}

/// Stacks samples of one shape into a [`Batch`]; u8 images become f32 in `[0, 1]`.
/// PyTorch equivalent: `default_collate` after `ToTensor`.
pub fn collate(samples: &[Sample], indices: Vec<usize>) -> Result<Batch> {
    collate_on(samples, indices, true)
}

/// [`collate`], copying the samples in parallel on rayon's pool only when `parallel` (a loader
/// worker copies on its own thread).
pub(crate) fn collate_on(samples: &[Sample], indices: Vec<usize>, parallel: bool) -> Result<Batch> {
    let first = samples
        .first()
        .ok_or_else(|| DataError::invalid("collate", "no samples"))?;
    if indices.len() != samples.len() {
        return Err(DataError::invalid(
            "collate",
            "one index per sample is needed",
        ));
    }
    let dims = first.input.tensor_dims();
    let per = first.input.numel()?;
    for (k, s) in samples.iter().enumerate() {
        s.input.numel()?;
        let d = s.input.tensor_dims();
        let same_kind = std::mem::discriminant(&s.input) == std::mem::discriminant(&first.input);
        if d != dims || !same_kind {
            return Err(DataError::invalid(
                "collate",
                format!(
                    "sample {k} (dataset index {}) has input shape {d:?} but the first has {dims:?}; \
                     resize or crop to one size",
                    indices[k]
                ),
            ));
        }
    }
    let total = checked_numel("collate", &[per, samples.len()])?;
    let mut data = try_filled("collate", total, 0.0f32)?;
    if per > 0 && parallel {
        data.par_chunks_mut(per)
            .zip(samples.par_iter())
            .with_min_len(16)
            .try_for_each(|(out, s)| s.input.write_f32(out))?;
    } else if per > 0 {
        data.chunks_mut(per)
            .zip(samples)
            .try_for_each(|(out, s)| s.input.write_f32(out))?;
    }
    let mut shape = vec![samples.len()];
    shape.extend_from_slice(&dims);
    let inputs = Tensor::from_vec(data, shape)?;
    let targets = match first.target {
        Target::Class(_) => {
            let classes: Option<Vec<i64>> = samples.iter().map(Sample::class).collect();
            let classes = classes
                .ok_or_else(|| DataError::invalid("collate", "mixed class and value targets"))?;
            Tensor::from_vec(classes, [samples.len()])?
        }
        Target::Value(_) => {
            let values: Option<Vec<f32>> = samples
                .iter()
                .map(|s| match s.target {
                    Target::Value(v) => Some(v),
                    Target::Class(_) => None,
                })
                .collect();
            let values = values
                .ok_or_else(|| DataError::invalid("collate", "mixed class and value targets"))?;
            Tensor::from_vec(values, [samples.len()])?
        }
    };
    Ok(Batch {
        inputs,
        targets,
        indices,
    })
}
