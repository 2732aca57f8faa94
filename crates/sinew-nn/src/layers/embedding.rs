//! `Embedding`: a lookup table `[num_embeddings, dim]` indexed by i64 ids, with PyTorch's
//! `padding_idx` (that row starts at zero and never receives a gradient).

use sinew_tensor::{DType, Device, Error, Parameter, Result, Tensor, no_grad};

use crate::{Module, Visit, init, summary};

/// Looks up rows of `weight` for i64 `ids` of any shape: output `[...ids, dim]`. Rows at
/// `padding_idx` get no gradient (PyTorch's `F.embedding`).
pub fn embedding(ids: &Tensor, weight: &Tensor, padding_idx: Option<usize>) -> Result<Tensor> {
    if ids.dtype() != DType::I64 || weight.rank() != 2 {
        return Err(Error::invalid(
            "embedding",
            format!(
                "expects i64 ids and a [num, dim] weight, got {:?} ids and weight {}",
                ids.dtype(),
                weight.shape()
            ),
        ));
    }
    let mut out_shape = ids.dims().to_vec();
    out_shape.push(weight.dims()[1]);
    let rows = weight.index_select(0, &ids.flatten_all()?)?;
    let rows = match padding_idx {
        Some(pad) => {
            let keep = ids
                .flatten_all()?
                .compare_scalar(sinew_tensor::CmpOp::Ne, pad as f64)?
                .to_dtype(weight.dtype())?
                .unsqueeze(1)?;
            // Same values, but the gradient of padding rows is cut.
            let cut = rows.detach().mul(&keep.rsub_scalar(1.0)?)?;
            rows.mul(&keep)?.add(&cut)?
        }
        None => rows,
    };
    rows.reshape(out_shape)
}

/// An embedding table initialised from N(0, 1), as in PyTorch.
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Parameter,
    /// Row that stays zero and gets no gradient.
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// `num_embeddings` rows of `embedding_dim`, optional padding row.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
    ) -> Result<Self> {
        if let Some(p) = padding_idx
            && p >= num_embeddings
        {
            return Err(Error::invalid(
                "Embedding",
                format!("padding_idx {p} must be within num_embeddings {num_embeddings}"),
            ));
        }
        let w = Tensor::zeros([num_embeddings, embedding_dim], DType::F32, &Device::cpu())?;
        init::normal_(&w, 0.0, 1.0)?;
        if let Some(p) = padding_idx {
            let _guard = no_grad();
            w.narrow(0, p, 1)?.fill_(0.0)?;
        }
        Ok(Embedding {
            weight: Parameter::new(w),
            padding_idx,
        })
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let y = embedding(ids, &self.weight.value(), self.padding_idx)?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
    }
}
