//! The wide im2col/col2im primitives of `conv2d` (`grad/conv2d_chunks.rs`): a batch's columns
//! side by side, `[c*kh*kw, n*oh*ow]`. CPU kernels: `cpu/conv_wide.rs`.

use crate::backend::Unfold2d;
use crate::{Result, Shape, Tensor};

impl Tensor {
    /// im2col into wide columns: `[n, c, h, w]` to `[c*kh*kw, n*oh*ow]`, the images' columns
    /// side by side (see [`crate::Backend::unfold2d_wide`]).
    ///
    /// Errors (never panics) when `spec` does not describe this tensor's shape or its
    /// geometry is invalid.
    pub(crate) fn unfold2d_wide_untracked(&self, spec: &Unfold2d) -> Result<Tensor> {
        const OP: &str = "unfold2d_wide";
        let (oh, ow) = self.check_unfold_input(OP, spec)?;
        let shape = spec.wide_cols_shape(OP, oh, ow)?;
        self.map_storage(shape, |b, s, l| b.unfold2d_wide(s, l, spec))
    }

    /// col2im from wide columns `[c*kh*kw, n*oh*ow]` into `[n, c, h, w]`, the adjoint of
    /// [`Tensor::unfold2d_wide_untracked`].
    ///
    /// Errors (never panics) when this tensor is not the wide column tensor of `spec`.
    pub(crate) fn fold2d_wide_untracked(&self, spec: &Unfold2d) -> Result<Tensor> {
        const OP: &str = "fold2d_wide";
        let (oh, ow) = spec.check(OP)?;
        self.check_unfold_columns(OP, "wide columns", &spec.wide_cols_shape(OP, oh, ow)?)?;
        let shape = Shape::new([spec.n, spec.c, spec.h, spec.w]);
        self.map_storage(shape, |b, s, l| b.fold2d_wide(s, l, spec))
    }
}
