//! Default bodies of [`Backend::unfold2d_wide`] and [`Backend::fold2d_wide`], built from the
//! backend's own `unfold2d`, `fold2d` and `copy_strided`.

use crate::backend::{Backend, BackendStorage, BoxedStorage, Unfold2d};
use crate::{Error, Layout, Result};

/// `[n, c*kh*kw, oh*ow]` columns, then a copy with the image axis moved to the middle:
/// `[c*kh*kw, n, oh*ow]`, which is `[c*kh*kw, n*oh*ow]`.
pub(crate) fn unfold2d_wide<B: Backend + ?Sized>(
    backend: &B,
    src: &dyn BackendStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<BoxedStorage> {
    const OP: &str = "unfold2d_wide";
    let (oh, ow) = spec.check(OP)?;
    let cols_shape = spec.cols_shape(OP, oh, ow)?;
    let cols = backend.unfold2d(src, layout, spec)?;
    let view = Layout::contiguous(cols_shape).permute(&[1, 0, 2])?;
    backend.copy_strided(&*cols, &view)
}

/// A view of the wide columns as `[n, c*kh*kw, oh*ow]`, copied contiguous, then `fold2d`.
pub(crate) fn fold2d_wide<B: Backend + ?Sized>(
    backend: &B,
    cols: &dyn BackendStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<BoxedStorage> {
    const OP: &str = "fold2d_wide";
    let (oh, ow) = spec.check(OP)?;
    let wide = spec.wide_cols_shape(OP, oh, ow)?;
    if layout.shape() != &wide {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: layout.shape().clone(),
            rhs: wide,
        });
    }
    let cols_shape = spec.cols_shape(OP, oh, ow)?;
    // Element (i, r, p) of the `[n, rows, l]` view is element (r, i * l + p) of the wide view.
    let (rs, cs) = (layout.strides()[0], layout.strides()[1]);
    let l = cols_shape.dims()[2];
    let image_stride = l.checked_mul(cs).ok_or_else(|| Error::Overflow {
        op: OP,
        what: "the stride of an image's columns".into(),
    })?;
    let view = Layout::from_parts(
        cols_shape.clone(),
        vec![image_stride, rs, cs],
        layout.offset(),
    );
    let per_image = backend.copy_strided(cols, &view)?;
    backend.fold2d(&*per_image, &Layout::contiguous(cols_shape), spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::{DType, Device, Generator, Tensor};

    /// The CPU backend's composite defaults (not its own kernels) against the tensor ops.
    #[test]
    fn composite_defaults_match_the_cpu_kernels() {
        let x = Generator::new(3)
            .uniform([3, 2, 5, 6], -1.0, 1.0, DType::F32, &Device::cpu())
            .unwrap();
        let spec = x
            .unfold_spec("unfold2d", (2, 3), (2, 1), (1, 1), (1, 2), 0.0)
            .unwrap();
        let wide = x.unfold2d_wide_untracked(&spec).unwrap();
        let composed = x
            .with_storage(|s, l| unfold2d_wide(&CpuBackend, s, l, &spec))
            .unwrap();
        let composed = Tensor::from_storage(composed, wide.shape().clone(), Device::cpu()).unwrap();
        assert_eq!(
            composed.to_vec::<f32>().unwrap(),
            wide.to_vec::<f32>().unwrap()
        );
        // Through a transposed view of the columns (non-unit strides).
        let wide_t = wide.t().unwrap().contiguous().unwrap().t().unwrap();
        let folded = wide.fold2d_wide_untracked(&spec).unwrap();
        let composed = wide_t
            .with_storage(|s, l| fold2d_wide(&CpuBackend, s, l, &spec))
            .unwrap();
        let composed = Tensor::from_storage(composed, x.shape().clone(), Device::cpu()).unwrap();
        assert_eq!(
            composed.to_vec::<f32>().unwrap(),
            folded.to_vec::<f32>().unwrap()
        );
    }
}
