//! CPU kernels of the in-place updates ([`InplaceOp`]), allocation-free.
//!
//! The destination view is updated element by element from up to two source views of its shape
//! (broadcast sources have stride 0). A contiguous destination with contiguous sources takes a
//! slice loop the compiler vectorises; anything else walks rows like `strided.rs`, with the
//! walk state on the stack (views of up to [`MAX_RANK`] dims after merging; deeper ones take a
//! slower path that allocates). Both run on rayon above [`PARALLEL_THRESHOLD`] elements.
//! f16/bf16 compute through f32; unary formulas come from `unary.rs` (one formula per op).

use half::{bf16, f16};
use num_traits::Float;
use rayon::prelude::*;

use super::elementwise::float_op;
use super::unary::{MapWith, unary_float, unary_int};
use super::{CpuStorage, PARALLEL_THRESHOLD, cpu};
use crate::backend::{BackendStorage, InplaceOp};
use crate::ops::BinaryOp;
use crate::{DType, Element, Error, Layout, Result, StridedOffsets};

/// Elements per parallel work item.
const CHUNK: usize = 1 << 13;

/// Most dims (after merging) the stack-based walk handles.
const MAX_RANK: usize = 16;

/// A stored element and the type it is computed in.
trait Lane: Element + Copy + Send + Sync {
    /// Compute type (f32 for f16/bf16).
    type C: Copy + Send + Sync;
    /// Widens to the compute type.
    fn load(self) -> Self::C;
    /// Narrows back.
    fn store(c: Self::C) -> Self;
}

macro_rules! lane {
    ($t:ty, $c:ty, $load:expr, $store:expr) => {
        impl Lane for $t {
            type C = $c;
            #[inline(always)]
            fn load(self) -> $c {
                $load(self)
            }
            #[inline(always)]
            fn store(c: $c) -> $t {
                $store(c)
            }
        }
    };
}
lane!(f32, f32, |x| x, |c| c);
lane!(f64, f64, |x| x, |c| c);
lane!(i64, i64, |x| x, |c| c);
lane!(f16, f32, f16::to_f32, f16::from_f32);
lane!(bf16, f32, bf16::to_f32, bf16::from_f32);

/// Updates the view `dl` of `dst` by `op` from `srcs` (see [`crate::Backend::inplace`]).
pub(super) fn inplace(
    op: InplaceOp,
    dst: &mut CpuStorage,
    dl: &Layout,
    srcs: &[(&dyn BackendStorage, &Layout)],
) -> Result<()> {
    let name = op_name(op);
    if srcs.len() != op.num_sources() {
        return Err(Error::invalid(
            name,
            format!("expects {} sources, got {}", op.num_sources(), srcs.len()),
        ));
    }
    if dl.storage_extent() > dst.len() {
        return Err(Error::invalid(name, "destination view exceeds its storage"));
    }
    for (s, l) in srcs {
        if s.dtype() != dst.dtype() {
            return Err(Error::DTypeMismatch {
                op: name,
                lhs: dst.dtype(),
                rhs: s.dtype(),
            });
        }
        if l.dims() != dl.dims() {
            return Err(Error::ShapeMismatch {
                op: name,
                lhs: dl.shape().clone(),
                rhs: l.shape().clone(),
            });
        }
        if l.storage_extent() > s.len() {
            return Err(Error::invalid(name, "source view exceeds its storage"));
        }
    }
    if let InplaceOp::Fill(v) = op {
        with_cpu_storage!(dst, d => {
            let v = Element::from_f64(v);
            apply(d, dl, [], move |_, []| v);
        });
        return Ok(());
    }
    match dst {
        CpuStorage::F32(d) => float_kernel(op, d, dl, srcs),
        CpuStorage::F64(d) => float_kernel(op, d, dl, srcs),
        CpuStorage::F16(d) => float_kernel(op, d, dl, srcs),
        CpuStorage::BF16(d) => float_kernel(op, d, dl, srcs),
        CpuStorage::I64(d) => int_kernel(op, d, dl, srcs),
        other => Err(Error::UnsupportedDType {
            op: name,
            dtype: other.dtype(),
        }),
    }
}

/// The op's name in error messages.
fn op_name(op: InplaceOp) -> &'static str {
    match op {
        InplaceOp::Binary(b) => match b {
            BinaryOp::Add => "add_",
            BinaryOp::Sub => "sub_",
            BinaryOp::Mul => "mul_",
            BinaryOp::Div => "div_",
            _ => "binary in-place op",
        },
        InplaceOp::Unary(u) => u.name(),
        InplaceOp::Axpy(_) => "axpy_",
        InplaceOp::Addcmul(_) => "addcmul_",
        InplaceOp::Addcdiv(_) => "addcdiv_",
        InplaceOp::Lerp(_) => "lerp_",
        InplaceOp::Fill(_) => "fill_",
    }
}

/// Source `i` as a typed slice and its layout (dtypes were checked by [`inplace`]).
fn src<'a, T: Element>(
    srcs: &[(&'a dyn BackendStorage, &'a Layout)],
    i: usize,
) -> (&'a [T], &'a Layout) {
    let (s, l) = srcs[i];
    (
        T::slice_of(cpu(s)).expect("source dtype checked against the destination"),
        l,
    )
}

fn float_kernel<T>(
    op: InplaceOp,
    d: &mut [T],
    dl: &Layout,
    srcs: &[(&dyn BackendStorage, &Layout)],
) -> Result<()>
where
    T: Lane,
    T::C: Float + Default,
{
    let c = |x: f64| <T::C as num_traits::NumCast>::from(x).unwrap_or_else(T::C::nan);
    let one = <T::C as num_traits::One>::one();
    match op {
        InplaceOp::Binary(b) => {
            let s = [src::<T>(srcs, 0)];
            match b {
                BinaryOp::Add => apply(d, dl, s, |x, [y]| T::store(x.load() + y.load())),
                BinaryOp::Sub => apply(d, dl, s, |x, [y]| T::store(x.load() - y.load())),
                BinaryOp::Mul => apply(d, dl, s, |x, [y]| T::store(x.load() * y.load())),
                BinaryOp::Div => apply(d, dl, s, |x, [y]| T::store(x.load() / y.load())),
                other => {
                    let f = float_op::<T::C>(other);
                    apply(d, dl, s, move |x, [y]| T::store(f(x.load(), y.load())))
                }
            }
        }
        InplaceOp::Unary(u) => unary_float::<T::C, _>(u, InPlace { d, dl }),
        InplaceOp::Axpy(a) => {
            let a = c(a);
            apply(d, dl, [src::<T>(srcs, 0)], move |x, [y]| {
                T::store(x.load() + a * y.load())
            })
        }
        InplaceOp::Addcmul(v) => {
            let v = c(v);
            let s = [src::<T>(srcs, 0), src::<T>(srcs, 1)];
            apply(d, dl, s, move |x, [y, z]| {
                T::store(x.load() + v * y.load() * z.load())
            })
        }
        InplaceOp::Addcdiv(v) => {
            let v = c(v);
            let s = [src::<T>(srcs, 0), src::<T>(srcs, 1)];
            apply(d, dl, s, move |x, [y, z]| {
                T::store(x.load() + v * (y.load() / z.load()))
            })
        }
        InplaceOp::Lerp(w) => {
            // PyTorch's two-sided formula: exact at weight 0 and 1.
            let (w, small) = (c(w), w.abs() < 0.5);
            apply(d, dl, [src::<T>(srcs, 0)], move |x, [y]| {
                let (x, y) = (x.load(), y.load());
                T::store(if small {
                    x + w * (y - x)
                } else {
                    y - (y - x) * (one - w)
                })
            })
        }
        // Handled for every dtype by `inplace`.
        InplaceOp::Fill(v) => {
            let v = T::from_f64(v);
            apply(d, dl, [], move |_, []| v)
        }
    }
    Ok(())
}

fn int_kernel(
    op: InplaceOp,
    d: &mut [i64],
    dl: &Layout,
    srcs: &[(&dyn BackendStorage, &Layout)],
) -> Result<()> {
    let name = op_name(op);
    let int = |x: f64| {
        if x.fract() != 0.0 || !x.is_finite() {
            Err(Error::invalid(
                name,
                format!("scalar {x} is not an integer for an i64 tensor"),
            ))
        } else {
            Ok(x as i64)
        }
    };
    let unsupported = || Error::UnsupportedDType {
        op: name,
        dtype: DType::I64,
    };
    match op {
        InplaceOp::Binary(b) => {
            let s = [src::<i64>(srcs, 0)];
            let f: fn(i64, i64) -> i64 = match b {
                BinaryOp::Add => i64::wrapping_add,
                BinaryOp::Sub => i64::wrapping_sub,
                BinaryOp::Mul => i64::wrapping_mul,
                BinaryOp::Maximum => std::cmp::max,
                BinaryOp::Minimum => std::cmp::min,
                BinaryOp::Div => {
                    let (v, l) = s[0];
                    if StridedOffsets::starting_at(l, 0).any(|o| v[o] == 0) {
                        return Err(Error::invalid(name, "integer division by zero"));
                    }
                    i64::wrapping_div
                }
                _ => return Err(unsupported()),
            };
            apply(d, dl, s, move |x, [y]| f(x, y));
        }
        InplaceOp::Unary(u) => unary_int(u, InPlace { d, dl })?,
        InplaceOp::Axpy(a) => {
            let a = int(a)?;
            apply(d, dl, [src::<i64>(srcs, 0)], move |x, [y]| {
                x.wrapping_add(a.wrapping_mul(y))
            });
        }
        InplaceOp::Addcmul(v) => {
            let v = int(v)?;
            let s = [src::<i64>(srcs, 0), src::<i64>(srcs, 1)];
            apply(d, dl, s, move |x, [y, z]| {
                x.wrapping_add(v.wrapping_mul(y).wrapping_mul(z))
            });
        }
        _ => return Err(unsupported()),
    }
    Ok(())
}

/// Applies a unary formula to the destination view in place.
struct InPlace<'a, T> {
    d: &'a mut [T],
    dl: &'a Layout,
}

impl<T: Lane> MapWith<T::C> for InPlace<'_, T> {
    type Out = ();
    fn map<F: Fn(T::C) -> T::C + Sync + Send>(self, f: F) {
        apply(self.d, self.dl, [], move |x, []| T::store(f(x.load())));
    }
}

/// `d[i] = f(d[i], [src_k[i]..])` over the view `dl` of `d`. Callers checked that every view
/// lies inside its storage and that sources have the destination's dims.
fn apply<T, const K: usize>(
    d: &mut [T],
    dl: &Layout,
    srcs: [(&[T], &Layout); K],
    f: impl Fn(T, [T; K]) -> T + Sync + Send,
) where
    T: Copy + Send + Sync,
{
    let n = dl.elem_count();
    if n == 0 {
        return;
    }
    if let Some((start, end)) = dl.contiguous_offset() {
        let dense: Option<[&[T]; K]> = srcs
            .iter()
            .all(|(_, l)| l.is_contiguous())
            .then(|| std::array::from_fn(|k| &srcs[k].0[srcs[k].1.offset()..][..n]));
        if let Some(s) = dense {
            let body = |(i, chunk): (usize, &mut [T])| {
                let base = i * CHUNK;
                let s: [&[T]; K] = std::array::from_fn(|k| &s[k][base..base + chunk.len()]);
                for (j, x) in chunk.iter_mut().enumerate() {
                    *x = f(*x, std::array::from_fn(|k| s[k][j]));
                }
            };
            let d = &mut d[start..end];
            if n >= PARALLEL_THRESHOLD {
                d.par_chunks_mut(CHUNK).enumerate().for_each(body);
            } else {
                d.chunks_mut(CHUNK).enumerate().for_each(body);
            }
            return;
        }
    }
    match Walk::new(dl, std::array::from_fn(|k| srcs[k].1)) {
        Some(walk) => walk.run(d, std::array::from_fn(|k| srcs[k].0), &f),
        None => {
            // More than MAX_RANK dims that do not merge: offsets iterators (allocate).
            let mut its: [StridedOffsets<'_>; K] =
                std::array::from_fn(|k| StridedOffsets::starting_at(srcs[k].1, 0));
            for o in StridedOffsets::starting_at(dl, 0) {
                let v = std::array::from_fn(|k| srcs[k].0[its[k].next().expect("same dims")]);
                d[o] = f(d[o], v);
            }
        }
    }
}

/// A raw destination pointer shared by the row tasks.
#[derive(Clone, Copy)]
struct DstPtr<T>(*mut T);
// SAFETY: tasks write disjoint elements (the view is checked injective before going parallel)
// of a buffer the caller holds `&mut` for the whole walk.
unsafe impl<T: Send> Send for DstPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for DstPtr<T> {}

/// A strided walk over a view and `K` same-shape sources, state on the stack.
struct Walk<const K: usize> {
    rank: usize,
    dims: [usize; MAX_RANK],
    dst: [usize; MAX_RANK],
    src: [[usize; MAX_RANK]; K],
    dst_offset: usize,
    src_offset: [usize; K],
    /// Every element of the destination view is a distinct storage slot.
    injective: bool,
}

impl<const K: usize> Walk<K> {
    /// Drops size-1 dims and merges neighbours adjacent in every operand; `None` when more than
    /// [`MAX_RANK`] dims remain.
    fn new(dl: &Layout, srcs: [&Layout; K]) -> Option<Self> {
        let mut w = Walk {
            rank: 0,
            dims: [0; MAX_RANK],
            dst: [0; MAX_RANK],
            src: [[0; MAX_RANK]; K],
            dst_offset: dl.offset(),
            src_offset: std::array::from_fn(|k| srcs[k].offset()),
            injective: false,
        };
        for (i, &size) in dl.dims().iter().enumerate() {
            if size == 1 {
                continue;
            }
            let r = w.rank;
            let merges = r > 0
                && w.dst[r - 1] == dl.strides()[i] * size
                && (0..K).all(|k| w.src[k][r - 1] == srcs[k].strides()[i] * size);
            if merges {
                w.dims[r - 1] *= size;
                w.dst[r - 1] = dl.strides()[i];
                for k in 0..K {
                    w.src[k][r - 1] = srcs[k].strides()[i];
                }
            } else {
                if r == MAX_RANK {
                    return None;
                }
                w.dims[r] = size;
                w.dst[r] = dl.strides()[i];
                for k in 0..K {
                    w.src[k][r] = srcs[k].strides()[i];
                }
                w.rank += 1;
            }
        }
        if w.rank == 0 {
            w.dims[0] = 1;
            w.rank = 1;
        }
        w.injective = w.dst_is_injective();
        Some(w)
    }

    /// Sufficient test that no two elements share a slot: sorted by stride, each dim's stride
    /// exceeds the span of all smaller ones (true for every permuted, sliced or reshaped view).
    fn dst_is_injective(&self) -> bool {
        let mut order = [0usize; MAX_RANK];
        for (i, o) in order.iter_mut().enumerate().take(self.rank) {
            *o = i;
        }
        let order = &mut order[..self.rank];
        order.sort_unstable_by_key(|&i| self.dst[i]);
        let mut span = 0usize;
        for &i in order.iter() {
            if self.dst[i] <= span && self.dims[i] > 1 {
                return false;
            }
            span = match (self.dims[i] - 1).checked_mul(self.dst[i]) {
                Some(x) => match span.checked_add(x) {
                    Some(s) => s,
                    None => return false,
                },
                None => return false,
            };
        }
        true
    }

    fn run<T: Copy + Send + Sync>(
        &self,
        d: &mut [T],
        srcs: [&[T]; K],
        f: &(impl Fn(T, [T; K]) -> T + Sync + Send),
    ) {
        let inner = self.dims[self.rank - 1];
        let rows: usize = self.dims[..self.rank - 1].iter().product();
        let ptr = DstPtr(d.as_mut_ptr());
        let rows_per_task = (CHUNK / inner).max(1);
        if rows * inner >= PARALLEL_THRESHOLD && self.injective {
            let tasks = rows.div_ceil(rows_per_task);
            (0..tasks).into_par_iter().for_each(|t| {
                let r0 = t * rows_per_task;
                self.rows(ptr, srcs, f, r0, (r0 + rows_per_task).min(rows));
            });
        } else {
            self.rows(ptr, srcs, f, 0, rows);
        }
    }

    /// Rows `[r0, r1)` of the walk.
    fn rows<T: Copy>(
        &self,
        ptr: DstPtr<T>,
        srcs: [&[T]; K],
        f: &impl Fn(T, [T; K]) -> T,
        r0: usize,
        r1: usize,
    ) {
        let outer = self.rank - 1;
        let inner = self.dims[outer];
        let (sd, ss): (usize, [usize; K]) =
            (self.dst[outer], std::array::from_fn(|k| self.src[k][outer]));
        let mut idx = [0usize; MAX_RANK];
        let (mut od, mut os) = (self.dst_offset, self.src_offset);
        let mut rest = r0;
        for i in (0..outer).rev() {
            idx[i] = rest % self.dims[i];
            rest /= self.dims[i];
            od += idx[i] * self.dst[i];
            for k in 0..K {
                os[k] += idx[i] * self.src[k][i];
            }
        }
        for _ in r0..r1 {
            for j in 0..inner {
                let v: [T; K] = std::array::from_fn(|k| srcs[k][os[k] + j * ss[k]]);
                // SAFETY: `od + j * sd` is an element of the destination view, inside the
                // buffer (`storage_extent() <= len` checked in release builds by `inplace`);
                // concurrent tasks touch other rows, hence other slots (`injective`).
                unsafe {
                    let p = ptr.0.add(od + j * sd);
                    *p = f(*p, v);
                }
            }
            for i in (0..outer).rev() {
                idx[i] += 1;
                od += self.dst[i];
                for k in 0..K {
                    os[k] += self.src[k][i];
                }
                if idx[i] < self.dims[i] {
                    break;
                }
                od -= self.dst[i] * self.dims[i];
                for k in 0..K {
                    os[k] -= self.src[k][i] * self.dims[i];
                }
                idx[i] = 0;
            }
        }
    }
}
