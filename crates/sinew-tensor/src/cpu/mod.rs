//! The CPU backend: host storage and the CPU kernels, one file per op family.
//!
//! Kernels read views through [`Layout`]s with a contiguous fast path, run in parallel with rayon
//! above [`PARALLEL_THRESHOLD`] elements, and compute f16/bf16 through f32.

pub(crate) mod alloc;
pub mod buffer_pool;
mod cast;
mod channel;
mod conv;
mod conv_direct;
mod conv_direct_grad;
mod conv_wide;
mod elementwise;
mod exp_f32;
pub mod gemm;
mod gemv;
mod gemv_f32;
mod index;
mod inplace;
mod inplace_walk;
mod matmul;
mod matmul_spec;
mod par;
mod pool;
mod pool_2x2_avx2;
mod pow_sum;
mod reduce;
mod relu_fused;
mod softmax;
mod softmax_f32;
mod softmax_xent;
mod spin_split;
mod strided;
mod unary;
mod unary_f32;

use crate::backend::{Backend, BackendStorage, BoxedStorage, ScatterMode, Unfold2d};
use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, DeviceLocation, Layout, Result};
use half::{bf16, f16};

pub use crate::host::CpuStorage;
pub(crate) use strided::{contiguous_slice, map_slice, map_view, select_views, zip_views};

/// Below this many elements kernels run on the calling thread.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// The widest instruction set that loops compiled once per level (`#[target_feature]`
/// copies of one generic loop, as in `softmax_f32.rs`) may use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VectorLevel {
    /// AVX-512F with AVX2 and FMA.
    Avx512,
    /// AVX2 with FMA.
    Avx2Fma,
    /// Neither: the loop as compiled for the baseline target.
    Portable,
}

/// This CPU's [`VectorLevel`] (the standard library caches the feature tests).
pub(crate) fn vector_level() -> VectorLevel {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2_fma = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx2_fma && has_avx512f() {
            return VectorLevel::Avx512;
        }
        if avx2_fma {
            return VectorLevel::Avx2Fma;
        }
    }
    VectorLevel::Portable
}

/// Whether the CPU running this process has AVX-512F, for the kernels that use it (the
/// standard library caches the answer, so this costs a load after the first call).
pub(crate) fn has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Downcasts a storage that the CPU backend was handed.
pub(crate) fn cpu(storage: &dyn BackendStorage) -> &CpuStorage {
    storage
        .as_any()
        .downcast_ref::<CpuStorage>()
        .expect("the CPU backend was given a storage of another device")
}

fn widen_half<T: Copy + Send + Sync + Into<f32>>(
    op: &'static str,
    data: &[T],
    layout: &Layout,
) -> Result<Vec<f32>> {
    map_view(op, data, layout, |x| x.into())
}

/// Runs an f32 computation on an f16/bf16 view and narrows the result back, else returns `None`.
/// Allocation failures are reported under `op`.
pub(crate) fn through_f32(
    op: &'static str,
    storage: &CpuStorage,
    layout: &Layout,
    f: impl FnOnce(&CpuStorage, &Layout) -> Result<CpuStorage>,
) -> Option<Result<CpuStorage>> {
    let (wide, narrow_to) = match storage {
        CpuStorage::F16(v) => (widen_half(op, v, layout), DType::F16),
        CpuStorage::BF16(v) => (widen_half(op, v, layout), DType::BF16),
        _ => return None,
    };
    let shape = layout.shape().clone();
    Some(wide.and_then(|wide| {
        let out = f(&CpuStorage::F32(wide), &Layout::contiguous(shape))?;
        narrow(op, out, narrow_to)
    }))
}

/// Converts an f32 result back to f16/bf16 (other results pass through).
pub(crate) fn narrow(op: &'static str, out: CpuStorage, dtype: DType) -> Result<CpuStorage> {
    fn convert<T: 'static>(op: &'static str, v: Vec<f32>, f: impl Fn(f32) -> T) -> Result<Vec<T>> {
        let mut out = alloc::try_with_capacity(op, v.len())?;
        out.extend(v.into_iter().map(f));
        Ok(out)
    }
    Ok(match (out, dtype) {
        (CpuStorage::F32(v), DType::F16) => CpuStorage::F16(convert(op, v, f16::from_f32)?),
        (CpuStorage::F32(v), DType::BF16) => CpuStorage::BF16(convert(op, v, bf16::from_f32)?),
        (other, _) => other,
    })
}

/// The CPU backend (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

/// The CPU answers reads and checks at once: no deferred ones.
impl crate::DeferredOps for CpuBackend {}

/// The CPU's in-place ops make no temporaries, so of the multi-tensor and fused kernels only
/// clipping's joint norm has one here (it replaces four f64 copies of each gradient).
impl crate::MultiTensorOps for CpuBackend {
    fn pow_sum_many(
        &self,
        runs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        p: f64,
    ) -> Result<Option<BoxedStorage>> {
        pow_sum::pow_sum_many(runs, lens, p)
    }
}

impl Backend for CpuBackend {
    fn location(&self) -> DeviceLocation {
        DeviceLocation::Cpu
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<BoxedStorage> {
        use crate::Element;
        fn fill<T: crate::Element>(len: usize, value: f64) -> Result<CpuStorage> {
            Ok(T::into_storage(alloc::try_vec(
                "full",
                len,
                T::from_f64(value),
            )?))
        }
        let _ = f32::DTYPE;
        Ok(Box::new(match dtype {
            DType::F32 => fill::<f32>(len, value)?,
            DType::F64 => fill::<f64>(len, value)?,
            DType::F16 => fill::<f16>(len, value)?,
            DType::BF16 => fill::<bf16>(len, value)?,
            DType::I64 => fill::<i64>(len, value)?,
            DType::U8 => fill::<u8>(len, value)?,
            DType::Bool => fill::<bool>(len, value)?,
        }))
    }

    fn philox_uniform(&self, len: usize, key: u64) -> Result<BoxedStorage> {
        let values = crate::philox::philox_uniform_values(len, key)?;
        Ok(Box::new(CpuStorage::F32(values)))
    }

    fn upload(&self, data: &CpuStorage) -> Result<BoxedStorage> {
        fn copy<T: Copy + 'static>(v: &[T]) -> Result<Vec<T>> {
            let mut out = alloc::try_with_capacity("upload", v.len())?;
            out.extend_from_slice(v);
            Ok(out)
        }
        Ok(Box::new(match data {
            CpuStorage::F32(v) => CpuStorage::F32(copy(v)?),
            CpuStorage::F64(v) => CpuStorage::F64(copy(v)?),
            CpuStorage::F16(v) => CpuStorage::F16(copy(v)?),
            CpuStorage::BF16(v) => CpuStorage::BF16(copy(v)?),
            CpuStorage::I64(v) => CpuStorage::I64(copy(v)?),
            CpuStorage::U8(v) => CpuStorage::U8(copy(v)?),
            CpuStorage::Bool(v) => CpuStorage::Bool(copy(v)?),
        }))
    }

    fn download(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        cast::copy_view("download", cpu(src), layout)
    }

    fn copy_strided(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<BoxedStorage> {
        Ok(Box::new(cast::copy_view("contiguous", cpu(src), layout)?))
    }

    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let dst = dst
            .as_any_mut()
            .downcast_mut::<CpuStorage>()
            .expect("the CPU backend was given a storage of another device");
        cast::copy_into(dst, dst_layout, cpu(src), src_layout)
    }

    fn inplace(
        &self,
        op: crate::InplaceOp,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        srcs: &[(&dyn BackendStorage, &Layout)],
    ) -> Result<()> {
        let dst = dst
            .as_any_mut()
            .downcast_mut::<CpuStorage>()
            .expect("the CPU backend was given a storage of another device");
        inplace::inplace(op, dst, dst_layout, srcs)
    }

    fn cast(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dtype: DType,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(cast::cast(cpu(src), layout, dtype)?))
    }

    fn unary(
        &self,
        op: UnaryOp,
        src: &dyn BackendStorage,
        layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(unary::unary(op, cpu(src), layout)?))
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(elementwise::binary(
            op,
            cpu(lhs),
            lhs_layout,
            cpu(rhs),
            rhs_layout,
        )?))
    }

    fn compare(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(elementwise::compare(
            op,
            cpu(lhs),
            lhs_layout,
            cpu(rhs),
            rhs_layout,
        )?))
    }

    fn where_cond(
        &self,
        cond: &dyn BackendStorage,
        cond_layout: &Layout,
        on_true: &dyn BackendStorage,
        true_layout: &Layout,
        on_false: &dyn BackendStorage,
        false_layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(elementwise::where_cond(
            cpu(cond),
            cond_layout,
            cpu(on_true),
            true_layout,
            cpu(on_false),
            false_layout,
        )?))
    }

    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        Ok(Box::new(reduce::reduce(op, cpu(src), layout, dims)?))
    }

    fn mean(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        Ok(Box::new(reduce::mean(cpu(src), layout, dims)?))
    }

    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(reduce::arg_reduce(op, cpu(src), layout, dim)?))
    }

    fn softmax(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
        log: bool,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(softmax::softmax(cpu(src), layout, dim, log)?))
    }

    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
        spec: &crate::MatmulSpec<'_>,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(matmul_spec::matmul_spec(
            cpu(lhs),
            lhs_layout,
            cpu(rhs),
            rhs_layout,
            spec,
        )?))
    }

    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        indices: &dyn BackendStorage,
        indices_layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(index::index_select(
            cpu(src),
            layout,
            cpu(indices),
            indices_layout,
            dim,
        )?))
    }

    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        index: &dyn BackendStorage,
        index_layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(index::gather(
            cpu(src),
            layout,
            cpu(index),
            index_layout,
            dim,
        )?))
    }

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
        Ok(Box::new(index::scatter(
            cpu(base),
            base_layout,
            cpu(index),
            index_layout,
            cpu(values),
            values_layout,
            dim,
            mode,
        )?))
    }

    fn unfold2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(conv::unfold2d(cpu(src), layout, spec)?))
    }

    fn fold2d(
        &self,
        cols: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(conv::fold2d(cpu(cols), layout, spec)?))
    }

    fn conv2d(
        &self,
        x: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let Some(out) = gemm::im2col::conv2d_f32(cpu(x.0), x.1, cpu(w.0), w.1, spec, groups) else {
            return Ok(None);
        };
        Ok(Some(Box::new(CpuStorage::F32(out?))))
    }

    fn conv2d_weight_grad(
        &self,
        x: (&dyn BackendStorage, &Layout),
        grad: (&dyn BackendStorage, &Layout),
        (_, dtype): (&[usize], DType),
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        if groups != 1 || dtype != DType::F32 {
            return Ok(None);
        }
        let dw =
            gemm::im2col_grad::conv2d_weight_grad_f32(cpu(x.0), x.1, cpu(grad.0), grad.1, spec);
        let Some(dw) = dw else {
            return Ok(None);
        };
        Ok(Some(Box::new(CpuStorage::F32(dw?))))
    }

    fn conv2d_input_grad(
        &self,
        grad: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        spec: &Unfold2d,
        groups: usize,
        add: Option<(&dyn BackendStorage, &Layout)>,
    ) -> Result<Option<BoxedStorage>> {
        if groups != 1 {
            return Ok(None);
        }
        let add = add.map(|(a, l)| (cpu(a), l));
        let (g, w) = ((cpu(grad.0), grad.1), (cpu(w.0), w.1));
        let dx = gemm::col2im_grad::conv2d_input_grad_f32(g.0, g.1, w.0, w.1, spec, add);
        let Some(dx) = dx else {
            return Ok(None);
        };
        Ok(Some(Box::new(CpuStorage::F32(dx?))))
    }

    fn prefers_input_grad_as_conv(&self, dtype: DType) -> bool {
        dtype == DType::F32 && gemm::packed_kernel_available()
    }

    fn unfold2d_wide(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(conv_wide::unfold2d_wide(cpu(src), layout, spec)?))
    }

    fn fold2d_wide(
        &self,
        cols: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        match conv_wide::fold2d_wide(cpu(cols), layout, spec) {
            Some(out) => Ok(Box::new(out?)),
            None => crate::composite_conv::fold2d_wide(self, cols, layout, spec),
        }
    }

    fn channel_sums(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        b: Option<(&dyn BackendStorage, &Layout)>,
    ) -> Result<BoxedStorage> {
        let b = b.map(|(s, l)| (cpu(s), l));
        Ok(Box::new(channel::channel_sums(cpu(a), a_layout, b)?))
    }

    fn channel_lincomb(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        b: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
    ) -> Result<BoxedStorage> {
        let b = b.map(|(s, l)| (cpu(s), l));
        Ok(Box::new(channel::channel_lincomb(
            cpu(a),
            a_layout,
            b,
            cpu(coef),
        )?))
    }

    fn softmax_xent_forward(
        &self,
        ops: crate::XentOperands<'_>,
        options: crate::SoftmaxXentOptions,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(softmax_xent::forward(ops, options)?))
    }

    fn softmax_xent_backward(
        &self,
        ops: crate::XentOperands<'_>,
        stats: (&dyn BackendStorage, &Layout),
        grad: (&dyn BackendStorage, &Layout),
        divisor: Option<(&dyn BackendStorage, &Layout)>,
        options: crate::SoftmaxXentOptions,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(softmax_xent::backward(
            ops, stats, grad, divisor, options,
        )?))
    }

    fn max_pool2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<(BoxedStorage, BoxedStorage)> {
        let (values, indices) = pool::max_pool2d(cpu(src), layout, spec)?;
        Ok((Box::new(values), Box::new(indices)))
    }

    fn max_pool2d_backward(
        &self,
        grad: &dyn BackendStorage,
        grad_layout: &Layout,
        indices: &dyn BackendStorage,
        indices_layout: &Layout,
        spec: &Unfold2d,
        _trusted: bool,
    ) -> Result<BoxedStorage> {
        // The check is part of the kernel's loop here, at no extra pass.
        Ok(Box::new(pool::max_pool2d_backward(
            cpu(grad),
            grad_layout,
            cpu(indices),
            indices_layout,
            spec,
        )?))
    }

    fn relu_backward(
        &self,
        grad: &dyn BackendStorage,
        grad_layout: &Layout,
        output: &dyn BackendStorage,
        output_layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(relu_fused::relu_backward(
            cpu(grad),
            grad_layout,
            cpu(output),
            output_layout,
        )?))
    }

    fn add_relu(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(relu_fused::add_relu(
            cpu(lhs),
            lhs_layout,
            cpu(rhs),
            rhs_layout,
        )?))
    }
}
