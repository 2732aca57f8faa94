//! The object-safe interface every device backend implements.
//!
//! Each method takes storages plus [`Layout`]s (views into them) and returns a new contiguous
//! storage, so backends never see `Tensor`. Validation (shapes, dtypes, devices) happens in
//! `ops/` before a backend is called; a backend may assume consistent arguments. Methods a backend
//! lacks keep their default body: a composite of the backend's own primitives where one exists
//! (`inplace`, `softmax`, `index_select`, `matmul_unfused`; they allocate temporaries), else
//! [`Error::NotImplemented`] naming the op. This module does not depend on any implementation:
//! host data is [`CpuStorage`] from the neutral `host` module.

use std::any::Any;

use crate::host::CpuStorage;
use crate::ops::channel_norm::ChannelNormStep;
use crate::ops::softmax_xent::{SoftmaxXentOptions, XentOperands};
use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, DeviceLocation, Error, Layout, Result};

pub use crate::backend_deferred::DeferredOps;
pub use crate::backend_multi::MultiTensorOps;
pub use crate::backend_ops::{
    Activation, BackendStorage, BoxedStorage, InplaceOp, MaskedLincomb, MatmulDims, MatmulSpec,
    RunningStorages, ScatterMode, check_operand_pair,
};
pub use crate::unfold2d::Unfold2d;

fn missing<T>(backend: &(impl Backend + ?Sized), op: &'static str) -> Result<T> {
    Err(Error::NotImplemented {
        op,
        device: backend.location(),
    })
}

/// A device's memory and kernels. Implemented by the CPU backend here and by GPU crates.
///
/// All outputs are fresh contiguous storages of the layout's shape unless said otherwise.
pub trait Backend: MultiTensorOps + DeferredOps + Send + Sync + std::fmt::Debug {
    /// Which device this backend drives.
    fn location(&self) -> DeviceLocation;

    /// Upcast so a crate that knows the concrete backend (its own kernels, streams, memory) can
    /// downcast to it.
    fn as_any(&self) -> &dyn Any;

    /// Waits for all queued work (no-op on synchronous backends).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// A storage of `len` elements, all equal to `value` converted to `dtype`.
    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<BoxedStorage>;

    /// Copies host data onto this device.
    fn upload(&self, data: &CpuStorage) -> Result<BoxedStorage>;

    /// `len` f32 uniforms on `[0, 1)` from Philox4x32-10 under `key`, laid out as
    /// [`crate::philox`] describes (element `i` depends only on `key` and `i`). Default: computed
    /// on the host and uploaded; a GPU backend overrides it with a kernel giving the same bits.
    fn philox_uniform(&self, len: usize, key: u64) -> Result<BoxedStorage> {
        let values = crate::philox::philox_uniform_values(len, key)?;
        self.upload(&CpuStorage::F32(values))
    }

    /// Copies the elements of a view to host memory, contiguous, in row-major order.
    fn download(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage>;

    /// Contiguous copy of a view.
    fn copy_strided(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<BoxedStorage>;

    /// Writes the view `src` into the view `dst_layout` of `dst` (same shape, same dtype).
    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()>;

    /// Converts a view to another dtype.
    fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType)
    -> Result<BoxedStorage>;

    /// Elementwise unary op.
    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout)
    -> Result<BoxedStorage>;

    /// Elementwise binary op on two views of the same shape (broadcast views have stride 0).
    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage>;

    /// Elementwise comparison, producing a `Bool` storage.
    fn compare(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage>;

    /// Picks `on_true` where `cond` (Bool) is set, else `on_false`; all views share one shape.
    fn where_cond(
        &self,
        cond: &dyn BackendStorage,
        cond_layout: &Layout,
        on_true: &dyn BackendStorage,
        true_layout: &Layout,
        on_false: &dyn BackendStorage,
        false_layout: &Layout,
    ) -> Result<BoxedStorage>;

    /// Reduces `dims` (sorted, unique) of a view; the output keeps them with size 1.
    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage>;

    /// [`Backend::reduce`] of an f16/bf16 view written as f32 holding its values (the reduction
    /// and a cast to f32 in one kernel: autocast's bias gradients). Default: `Ok(None)`, and
    /// the caller reduces, then casts.
    fn reduce_widened(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<Option<BoxedStorage>> {
        let _ = (op, src, layout, dims);
        Ok(None)
    }

    /// Mean over `dims` (sorted, unique) of a float view; the output keeps them with size 1.
    /// Its values are the sum divided by the count in the accumulator, then rounded to the
    /// dtype, as PyTorch's (an f16 mean of values whose f16 sum would overflow is finite); NaN
    /// for an empty reduction.
    ///
    /// Default: `reduce` (sum), then `unary` (div_scalar), through f32 for f16/bf16; a backend
    /// may do both in one kernel.
    fn mean(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        crate::composite::mean(self, src, layout, dims)
    }

    /// Index (i64) of the largest/smallest element along `dim` (kept with size 1); the first on ties.
    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage>;

    /// Numerically stable softmax (or log-softmax when `log`) along `dim`.
    ///
    /// Default: composed from `reduce`, `binary` and `unary` (allocates temporaries).
    fn softmax(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
        log: bool,
    ) -> Result<BoxedStorage> {
        crate::composite::softmax(self, src, layout, dim, log)
    }

    /// Batched matrix product; layouts are `[batch.., m, k]` and `[batch.., k, n]` with the same
    /// (broadcast) batch dims. Output is contiguous `[batch.., m, n]` of `spec.out_dtype` (default:
    /// the operands'), with `spec`'s epilogue applied. A backend without fused epilogues may
    /// return [`Error::NotImplemented`] for specs that are not plain (see
    /// [`Backend::matmul_unfused`]).
    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
        spec: &MatmulSpec<'_>,
    ) -> Result<BoxedStorage>;

    /// A matmul with any [`MatmulSpec`] built from a plain [`Backend::matmul`] followed by
    /// `cast` to the output dtype, `binary` add of the bias and `unary` ReLU (allocates
    /// temporaries). [`crate::Tensor::matmul_with`] falls back to it when `matmul` answers
    /// [`Error::NotImplemented`] for a spec that is not plain, so a backend without fused
    /// epilogues needs no code for them; it may also call this from its own `matmul`.
    fn matmul_unfused(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
        spec: &MatmulSpec<'_>,
    ) -> Result<BoxedStorage> {
        crate::composite::matmul_unfused(self, lhs, lhs_layout, rhs, rhs_layout, spec)
    }

    /// Updates the view `dst_layout` of `dst` in place (see [`InplaceOp`]); `srcs` has
    /// `op.num_sources()` views of the destination's shape and dtype.
    ///
    /// Default: computed out of place with this backend's `unary`/`binary`/`full`, then
    /// `copy_into` the destination; that allocates temporaries, so backends override it with
    /// allocation-free kernels (the CPU backend does).
    fn inplace(
        &self,
        op: InplaceOp,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        srcs: &[(&dyn BackendStorage, &Layout)],
    ) -> Result<()> {
        crate::composite::inplace(self, op, dst, dst_layout, srcs)
    }

    /// The loss scaler's unscale of one gradient view ([`crate::Tensor::amp_unscale_`]):
    /// `grad *= inv_scale` in place (the in-place `mul_scalar_`'s values), and the f32 element
    /// `found.1` of `found.0` set to 1 if any element of the result is not finite.
    ///
    /// Default: the in-place product, then `found = max(found, probe != probe)` with `probe`
    /// the sum of `grad * 0` (NaN exactly when an element is infinite or NaN).
    fn amp_unscale(
        &self,
        grad: &mut dyn BackendStorage,
        grad_layout: &Layout,
        found: (&mut dyn BackendStorage, usize),
        inv_scale: f64,
    ) -> Result<()> {
        crate::composite::amp_unscale(self, grad, grad_layout, found, inv_scale)
    }

    /// Picks entries of `src` along `dim` by a 1-d i64 `indices` view.
    ///
    /// Default: a [`Backend::gather`] with `indices` broadcast over the other dims.
    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        indices: &dyn BackendStorage,
        indices_layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        crate::composite::index_select(self, src, layout, indices, indices_layout, dim)
    }

    /// The input gradient of `index_select(dim, indices)` for an input of `input_dims`: zeros
    /// with each row `p` of `grad` (the output gradient, `input_dims` with `indices.len()` along
    /// `dim`) added at `indices[p]`, rows sharing an index summed in ascending `p` order with
    /// each addition rounded to the dtype (what the CPU's sequential scatter-add computes, so the
    /// result is the same on every run). Indices are already known to be i64 and 1-d.
    ///
    /// Default: `Ok(None)`, and the caller runs a scatter-add into zeros.
    fn index_select_backward(
        &self,
        grad: (&dyn BackendStorage, &Layout),
        indices: (&dyn BackendStorage, &Layout),
        dim: usize,
        input_dims: &[usize],
    ) -> Result<Option<BoxedStorage>> {
        let _ = (grad, indices, dim, input_dims);
        Ok(None)
    }

    /// `out[i][j] = src[i][index[i][j]]` along `dim` (PyTorch `gather`); output has index's shape.
    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        index: &dyn BackendStorage,
        index_layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        let _ = (src, layout, index, index_layout, dim);
        missing(self, "gather")
    }

    /// A copy of `base` with `values` written (or added) at `index` along `dim` (PyTorch `scatter`).
    fn scatter(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        index: &dyn BackendStorage,
        index_layout: &Layout,
        values: &dyn BackendStorage,
        values_layout: &Layout,
        dim: usize,
        mode: ScatterMode,
    ) -> Result<BoxedStorage> {
        let _ = (
            base,
            base_layout,
            index,
            index_layout,
            values,
            values_layout,
            dim,
            mode,
        );
        missing(self, "scatter")
    }

    /// im2col: sliding windows of a `[n, c, h, w]` view into `[n, c*kh*kw, oh*ow]`.
    fn unfold2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        let _ = (src, layout, spec);
        missing(self, "unfold2d")
    }

    /// Max pooling of a float `[n, c, h, w]` view over `spec`'s windows (its `pad_value` is
    /// ignored: padding never wins): the maxima `[n, c, oh, ow]` and, like PyTorch's
    /// `return_indices`, the i64 flat index `y * w + x` into each `h*w` plane of every maximum
    /// (the first maximal tap; the first in-bounds tap of a window whose values are all -inf).
    ///
    /// Default: composed from `unfold2d`, `reduce`, `arg_reduce` and `gather` (allocates the
    /// unfolded windows).
    fn max_pool2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<(BoxedStorage, BoxedStorage)> {
        crate::composite_pool::max_pool2d(self, src, layout, spec)
    }

    /// Backward of [`Backend::max_pool2d`]: a `[n, c, h, w]` gradient that is zero except for
    /// each element of `grad` (`[n, c, oh, ow]`) added at its index in `indices` (same shape,
    /// i64). An index outside the `h*w` plane is an error; a backend may also refuse indices
    /// that are not a tap of their own window (which `max_pool2d` never returns; the CUDA
    /// backend gathers per pixel over the windows that cover it). `trusted`: the indices are
    /// this backend's `max_pool2d` output for `spec`, unmodified since (max pooling's autograd
    /// rule knows it from their version counter), so a backend may skip checking them.
    ///
    /// Default: `full` zeros and a `scatter` add.
    fn max_pool2d_backward(
        &self,
        grad: &dyn BackendStorage,
        grad_layout: &Layout,
        indices: &dyn BackendStorage,
        indices_layout: &Layout,
        spec: &Unfold2d,
        trusted: bool,
    ) -> Result<BoxedStorage> {
        let _ = trusted;
        crate::composite_pool::max_pool2d_backward(
            self,
            grad,
            grad_layout,
            indices,
            indices_layout,
            spec,
        )
    }

    /// Average pooling of a float `[n, c, h, w]` view over `spec`'s windows (dilation 1; the
    /// padding value ignored): each output is the sum of its window's in-bounds taps divided by
    /// the window's size (`count_include_pad`) or by its number of in-bounds taps, into a
    /// contiguous `[n, c, oh, ow]`. `Ok(None)` where the backend has no direct kernel; the
    /// caller then composes `unfold2d`, a sum and a division.
    ///
    /// Default: `Ok(None)`.
    fn avg_pool2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
        count_include_pad: bool,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (src, layout, spec, count_include_pad);
        Ok(None)
    }

    /// Backward of [`Backend::avg_pool2d`]: from the `[n, c, oh, ow]` gradient view, the
    /// contiguous `[n, c, h, w]` input gradient (each window's gradient divided as the forward
    /// divides, added to its in-bounds taps). `Ok(None)` where the backend has no direct kernel.
    ///
    /// Default: `Ok(None)`.
    fn avg_pool2d_backward(
        &self,
        grad: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
        count_include_pad: bool,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (grad, layout, spec, count_include_pad);
        Ok(None)
    }

    /// ReLU's input gradient from its output: `output <= 0 ? 0 : grad` (PyTorch's
    /// `threshold_backward`, a select: an inf or NaN gradient where the output is not positive
    /// gives 0, a NaN output passes the gradient), for two views of one shape and float dtype.
    ///
    /// Default: `compare` and `where_cond` (one temporary).
    fn relu_backward(
        &self,
        grad: &dyn BackendStorage,
        grad_layout: &Layout,
        output: &dyn BackendStorage,
        output_layout: &Layout,
    ) -> Result<BoxedStorage> {
        crate::composite::relu_backward(self, grad, grad_layout, output, output_layout)
    }

    /// `relu(lhs + rhs)` of two views of one shape and float dtype (broadcast dims have stride
    /// 0) in one pass ([`crate::Tensor::add_relu`]: a residual connection's sum and ReLU), the
    /// values of `binary(Add)` then `unary(Relu)`.
    ///
    /// Default: those two ops (one temporary).
    fn add_relu(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        crate::composite::add_relu(self, lhs, lhs_layout, rhs, rhs_layout)
    }

    /// Per-channel sums of a `[n, C, ...]` float view `a` over every dim but 1, accumulated in
    /// f64: a contiguous f64 `[2, C]` storage holding `sum(a)` then `sum(a * b)` (`b` another
    /// view of `a`'s shape and dtype; `a * a` when `None`). Batch norm's statistics (`b = a`)
    /// and its backward reductions (`a = dy`, `b = x`) in one read.
    ///
    /// Default: [`Error::NotImplemented`] (batch norm then uses its op-by-op form).
    fn channel_sums(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        b: Option<(&dyn BackendStorage, &Layout)>,
    ) -> Result<BoxedStorage> {
        let _ = (a, a_layout, b);
        missing(self, "channel_sums")
    }

    /// `alpha[c] * a + beta[c] * b + gamma[c]` for each element of channel `c` (dim 1) of a
    /// `[n, C, ...]` float view `a` (and `b`, same shape and dtype; the `beta` term is dropped
    /// when `None`), with `coef` an f64 storage starting with `[3, C]` rows `alpha`, `beta`, `gamma`,
    /// computed in `a`'s compute type: a contiguous storage of `a`'s shape and dtype. Batch
    /// norm's output (`x * scale + shift`) and input gradient (`dy * k1 + x * k2 + k3`) in one
    /// pass.
    ///
    /// Default: [`Error::NotImplemented`].
    fn channel_lincomb(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        b: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
    ) -> Result<BoxedStorage> {
        let _ = (a, a_layout, b, coef);
        missing(self, "channel_lincomb")
    }

    /// [`Backend::channel_lincomb`] of `a` alone followed by ReLU (NaN kept, as the unary
    /// `relu`), in one pass ([`crate::Tensor::channel_lincomb_relu`]: batch norm followed by
    /// ReLU), or with a `residual` (a view of `a`'s shape and dtype) that map and then
    /// [`Backend::add_relu`] of it and the residual ([`crate::Tensor::channel_lincomb_add_relu`]:
    /// a ResNet block's last batch norm, shortcut and ReLU); the values of the ops bit for bit.
    ///
    /// Default: `Ok(None)` (the ops run instead).
    fn channel_lincomb_relu(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        residual: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (a, a_layout, residual, coef);
        Ok(None)
    }

    /// [`Backend::channel_lincomb`] with `a` read as [`Backend::relu_backward`]`(a, mask)`
    /// (`mask` a view of `a`'s shape and dtype: the output of a ReLU that followed), in one
    /// pass ([`crate::Tensor::channel_lincomb_masked`]: the input gradient of batch norm
    /// followed by ReLU); the values of the two ops bit for bit. With `keep_masked`, also the
    /// masked `a` itself, written by the same pass
    /// ([`crate::Tensor::relu_grad_channel_lincomb`]: the gradient a residual gets too).
    ///
    /// Default: `Ok(None)` (the two ops run instead).
    fn channel_lincomb_masked(
        &self,
        (a, mask): (&dyn BackendStorage, &dyn BackendStorage),
        (a_layout, mask_layout): (&Layout, &Layout),
        b: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
        keep_masked: bool,
    ) -> Result<Option<MaskedLincomb>> {
        let _ = (a, mask, a_layout, mask_layout, b, coef, keep_masked);
        Ok(None)
    }

    /// A normalisation's per-channel step ([`crate::Tensor::channel_norm`]) in one kernel:
    /// `rows` are the operands, `sums` (`[2, C]`) then the `[C]` rows, each a dense run from
    /// the given element, f64 but for the scale and shift rows, which may be f32 (read as f64);
    /// a contiguous f64 `[6, C]` storage of the step's rows, equal bit for bit to the composed
    /// tensor ops.
    ///
    /// Default: `Ok(None)` (the tensor ops run instead).
    fn channel_norm(
        &self,
        step: ChannelNormStep,
        rows: &[(&dyn BackendStorage, usize)],
        c: usize,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (step, rows, c);
        Ok(None)
    }

    /// [`Backend::channel_sums`] of `a` (and `b`) followed by [`Backend::channel_norm`]'s
    /// `step` on those sums, in one kernel ([`crate::Tensor::channel_norm_of`]): `rows` are the
    /// step's `[C]` rows after the sums, as there; the same `[6, C]` storage, bit for bit, as
    /// the two calls.
    ///
    /// Default: `Ok(None)` (the two calls run instead).
    fn channel_norm_of(
        &self,
        a: (&dyn BackendStorage, &Layout),
        b: Option<(&dyn BackendStorage, &Layout)>,
        step: ChannelNormStep,
        rows: &[(&dyn BackendStorage, usize)],
    ) -> Result<Option<BoxedStorage>> {
        let _ = (a, b, step, rows);
        Ok(None)
    }

    /// Whether [`Backend::update_running_stats`] and [`Backend::channel_norm_updating`] have a
    /// kernel for running buffers of `dtype` (asked first, so that a backend without one costs
    /// batch norm no locking of its buffers each step). Default: `false`.
    fn fuses_running_stats(&self, dtype: DType) -> bool {
        let _ = dtype;
        false
    }

    /// Batch norm's running statistics update in one pass
    /// ([`crate::Tensor::update_running_stats_`]): `running` the running mean's and variance's
    /// buffers (one float dtype), `stats` the batch's mean and biased variance (f64), each a
    /// dense run of `c` elements from the given element (the two statistics may share a
    /// storage), `(momentum, unbias)` the update's scalars, and `count` an i64 element to
    /// increment (batch norm's `num_batches_tracked`). Returns `false`, writing nothing, where
    /// the backend has no kernel for them (the caller then runs the in-place ops, whose values a
    /// kernel must give bit for bit).
    ///
    /// Default: `false`.
    fn update_running_stats(
        &self,
        running: [(&mut dyn BackendStorage, usize); 2],
        stats: [(&dyn BackendStorage, usize); 2],
        c: usize,
        scalars: (f64, f64),
        count: Option<(&mut dyn BackendStorage, usize)>,
    ) -> Result<bool> {
        let _ = (running, stats, c, scalars, count);
        Ok(false)
    }

    /// [`Backend::channel_norm_of`]'s backward step on `dy` and `x` (`count` values a channel)
    /// that also returns the affine parameters' gradients, rows 4 and 5 of its result, as a
    /// `[2, C]` storage of dtype `params`, each rounded once as their cast would be: one kernel
    /// for batch norm's backward statistics and its weight's and bias's gradients
    /// ([`crate::Tensor::channel_norm_grads_of`]). With a `mask` (a view of `dy`'s shape and
    /// dtype: the output of a ReLU that followed), `dy` is read as
    /// [`Backend::relu_backward`]`(dy, mask)` ([`crate::Tensor::channel_norm_grads_masked`]).
    /// Returns `None` where the backend has no kernel for them (the caller then casts the rows,
    /// or masks `dy` first).
    ///
    /// Default: `None`.
    fn channel_norm_grads_of(
        &self,
        dy: (&dyn BackendStorage, &Layout),
        mask: Option<(&dyn BackendStorage, &Layout)>,
        x: (&dyn BackendStorage, &Layout),
        count: f64,
        rows: &[(&dyn BackendStorage, usize)],
        params: DType,
    ) -> Result<Option<(BoxedStorage, BoxedStorage)>> {
        let _ = (dy, mask, x, count, rows, params);
        Ok(None)
    }

    /// [`Backend::channel_norm_of`]'s forward step on one tensor, `(count, eps)` its scalars,
    /// that also updates batch norm's running statistics from the mean and biased variance it
    /// computes (rows 3 and 5 of its result) as [`Backend::update_running_stats`] would: one
    /// kernel for a training step's statistics and their update
    /// ([`crate::Tensor::channel_norm_updating`]). Returns `None`, writing nothing, where the
    /// backend has no kernel for them (the caller then runs the two steps, whose values a kernel
    /// must give bit for bit).
    ///
    /// Default: `None`.
    fn channel_norm_updating(
        &self,
        a: (&dyn BackendStorage, &Layout),
        scalars: (f64, f64),
        rows: &[(&dyn BackendStorage, usize)],
        running: RunningStorages<'_>,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (a, scalars, rows, running);
        Ok(None)
    }

    /// Fused softmax cross-entropy of the rows of `ops.logits` `[M, C]` (float) against the
    /// i64 class indices `ops.target` `[M]` (module docs of `ops/softmax_xent.rs` for the
    /// formula): a contiguous storage of the logits' [`crate::xent_stats_dtype`] (their own, f32
    /// for f16/bf16, as are the class weights) holding, as `[4, M]`, each row's
    /// loss, its weight (`w_t`, 0 when ignored), its maximum (`shift`; 0 when not finite) and
    /// `log_sum = ln(sum exp(x - shift))`, sums accumulated in f64; then 3 totals: the sum of
    /// the row losses, the sum of the row weights, and their ratio (the `mean` reduction), the
    /// sums taken in f64 over the stored row values (in any order) and rounded once. A target
    /// outside `[0, C)` other than `ignore_index` is `Error::IndexOutOfBounds` (a GPU backend may
    /// report it at its next synchronisation, with that row's output zeroed).
    ///
    /// Default: [`Error::NotImplemented`] (`CrossEntropyLoss` then uses its op-by-op form).
    fn softmax_xent_forward(
        &self,
        ops: XentOperands<'_>,
        options: SoftmaxXentOptions,
    ) -> Result<BoxedStorage> {
        let _ = (ops, options);
        missing(self, "softmax_xent_forward")
    }

    /// The gradient `[M, C]` (contiguous, the logits' dtype) of the row losses of
    /// [`Backend::softmax_xent_forward`] with respect to the logits, given its `[4, M]` rows
    /// `stats` and the gradient `grad` `[M]` of each row's loss (contiguous views, but `grad`
    /// may also be one value broadcast, stride 0), divided by `divisor` (one element: a mean's
    /// gradient over the sum of the row weights) when given; these three and the division are
    /// of the stats dtype, and f16/bf16 gradients are rounded from their f32 values. Targets
    /// are not checked again: invalid ones give zero rows.
    ///
    /// Default: [`Error::NotImplemented`].
    fn softmax_xent_backward(
        &self,
        ops: XentOperands<'_>,
        stats: (&dyn BackendStorage, &Layout),
        grad: (&dyn BackendStorage, &Layout),
        divisor: Option<(&dyn BackendStorage, &Layout)>,
        options: SoftmaxXentOptions,
    ) -> Result<BoxedStorage> {
        let _ = (ops, stats, grad, divisor, options);
        missing(self, "softmax_xent_backward")
    }

    /// im2col into wide columns: a `[n, c, h, w]` view to `[c*kh*kw, n*oh*ow]`, the columns of
    /// the images side by side (column `i * oh*ow + p` is window `p` of image `i`), so that a
    /// convolution of the whole batch is one matrix product.
    ///
    /// Default: `unfold2d` and a `copy_strided` transposing the image axis (one temporary).
    fn unfold2d_wide(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        crate::composite_conv::unfold2d_wide(self, src, layout, spec)
    }

    /// col2im from wide columns `[c*kh*kw, n*oh*ow]` (see [`Backend::unfold2d_wide`]) into
    /// `[n, c, h, w]`: the adjoint of `unfold2d_wide`.
    ///
    /// Default: a `copy_strided` into `[n, c*kh*kw, oh*ow]` and `fold2d` (one temporary).
    fn fold2d_wide(
        &self,
        cols: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        crate::composite_conv::fold2d_wide(self, cols, layout, spec)
    }

    /// A whole 2-d convolution (cross-correlation) without a column buffer: the `[n, c, h, w]`
    /// view `x` (zero padding) with the `[o, c/groups, kh, kw]` view `w` in `groups` channel
    /// groups, into a contiguous `[n, o, oh, ow]` storage (no bias). `Ok(None)` where the backend
    /// has no direct kernel for these operands (the caller then runs im2col and a GEMM).
    ///
    /// Default: `Ok(None)`.
    fn conv2d(
        &self,
        x: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (x, w, spec, groups);
        Ok(None)
    }

    /// [`Backend::conv2d`] with an epilogue in the same kernel: the bias `[o]` view `bias` (the
    /// operands' dtype) added to every output position when given, then `activation`, before
    /// the output's one rounding (for f32 the bits of adding it after; ReLU commutes with
    /// rounding). `Ok(None)` where the backend has no such kernel (the caller then applies the
    /// epilogue in place after the convolution).
    ///
    /// Default: `Ok(None)`.
    fn conv2d_epilogue(
        &self,
        x: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        bias: Option<(&dyn BackendStorage, &Layout)>,
        activation: Option<Activation>,
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (x, w, bias, activation, spec, groups);
        Ok(None)
    }

    /// The weight gradient of [`Backend::conv2d`] without a column buffer: from the input view `x`
    /// and the `[n, o, oh, ow]` output gradient view `grad` (same dtype), a contiguous storage of
    /// `weight`'s dims (`[o, c/groups, kh, kw]`) and dtype: theirs, or a wider float holding their
    /// rounded values ([`crate::BackwardCtx::cast_from_dtype`]). `Ok(None)` where the backend has
    /// no direct kernel for these operands and dtype.
    ///
    /// Default: `Ok(None)`.
    fn conv2d_weight_grad(
        &self,
        x: (&dyn BackendStorage, &Layout),
        grad: (&dyn BackendStorage, &Layout),
        weight: (&[usize], DType),
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (x, grad, weight, spec, groups);
        Ok(None)
    }

    /// The input gradient of [`Backend::conv2d`] without a column buffer: from the `[n, o, oh, ow]`
    /// output gradient view `grad` and the `[o, c/groups, kh, kw]` weight view `w` (same dtype), a
    /// contiguous `[n, c, h, w]` storage (`spec`'s input), plus `add` if given (a contiguous view
    /// of that shape and dtype: binary add's values, the gradient rounded, then the sum).
    /// `Ok(None)` where the backend has no direct kernel for these operands, with or without `add`.
    ///
    /// Default: `Ok(None)`.
    fn conv2d_input_grad(
        &self,
        grad: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        spec: &Unfold2d,
        groups: usize,
        add: Option<(&dyn BackendStorage, &Layout)>,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (grad, w, spec, groups, add);
        Ok(None)
    }

    /// Whether autograd should compute the input gradient of a stride-1, one-group convolution
    /// in `dtype` as a convolution of the output gradient ([`Backend::conv2d`]) rather than by
    /// [`Backend::conv2d_input_grad`] or col2im: where the direct forward is the faster path.
    ///
    /// Default: false.
    fn prefers_input_grad_as_conv(&self, dtype: DType) -> bool {
        let _ = dtype;
        false
    }

    /// col2im: sums `[n, c*kh*kw, oh*ow]` columns back into `[n, c, h, w]` (adjoint of unfold2d).
    fn fold2d(
        &self,
        cols: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        let _ = (cols, layout, spec);
        missing(self, "fold2d")
    }
}
