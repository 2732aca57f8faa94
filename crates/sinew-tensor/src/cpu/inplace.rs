//! CPU kernels of the in-place updates ([`InplaceOp`]), allocation-free.
//!
//! The destination view is updated element by element from up to two source views of its shape
//! (broadcast sources have stride 0). A contiguous destination with contiguous sources takes a
//! slice loop the compiler vectorises; anything else walks rows like `strided.rs`, with the
//! walk state on the stack (`inplace_walk.rs`; views with more dims than it holds after merging
//! take a slower path that allocates). Both run on rayon above [`PARALLEL_THRESHOLD`] elements.
//! f16/bf16 compute through f32; unary formulas come from `unary.rs` (one formula per op), and
//! `exp_`/`sigmoid_` of f32, f16 and bf16 from `unary_f32.rs` (the out-of-place ops' ones).

use half::{bf16, f16};
use num_traits::Float;

use super::elementwise::float_op;
use super::inplace_walk::{CHUNK, Walk};
use super::unary::{MapWith, unary_float, unary_int};
use super::unary_f32::InPlaceFormula;
use super::{CpuStorage, PARALLEL_THRESHOLD, cpu, par};
use crate::backend::{BackendStorage, InplaceOp};
use crate::ops::BinaryOp;
use crate::{DType, Element, Error, Layout, Result, StridedOffsets};

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
    // `exp_` and `sigmoid_` of f32, f16 and bf16: the formulas of the out-of-place ops, so both
    // forms give the same bits.
    if let InplaceOp::Unary(u) = op
        && let Some(formula) = super::unary_f32::in_place_formula(u)
    {
        let served = match dst {
            CpuStorage::F32(d) => formula_in_place(formula, d, dl, |x| x, |x| x),
            CpuStorage::F16(d) => formula_in_place(formula, d, dl, f16::to_f32, f16::from_f32),
            CpuStorage::BF16(d) => formula_in_place(formula, d, dl, bf16::to_f32, bf16::from_f32),
            _ => false,
        };
        if served {
            return Ok(());
        }
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

/// `x = formula(x)` over the view `dl` of `d` (checked inside `d`): dense runs vectorised, on
/// rayon above [`PARALLEL_THRESHOLD`] elements; other views element by element. Returns `true`
/// (served).
fn formula_in_place<T: Copy + Send + Sync>(
    formula: InPlaceFormula,
    d: &mut [T],
    dl: &Layout,
    load: fn(T) -> f32,
    store: fn(f32) -> T,
) -> bool {
    match dl.contiguous_offset() {
        Some((start, end)) => {
            let dense = &mut d[start..end];
            let parallel = dense.len() >= PARALLEL_THRESHOLD;
            par::for_each_chunk_mut(dense, CHUNK, parallel, &|_, chunk| {
                formula.map_in_place(chunk, load, store)
            });
        }
        None => {
            let f = formula.scalar();
            apply(d, dl, [], move |x, []| store(f(load(x))));
        }
    }
    true
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
        InplaceOp::MulAxpy { .. } => "mul_axpy_",
        InplaceOp::MulAddcmul { .. } => "mul_addcmul_",
        InplaceOp::AddcdivSqrt { .. } => "addcdiv_sqrt_",
        InplaceOp::MulMaxAbs { .. } => "mul_max_abs_",
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
        // The fused optimizer updates: each step rounds where the unfused ops would (no FMA),
        // so f32 and f64 results equal the op-by-op ones bit for bit.
        InplaceOp::MulAxpy { scale, alpha } => {
            let (s, a) = (c(scale), c(alpha));
            apply(d, dl, [src::<T>(srcs, 0)], move |x, [y]| {
                let kept = x.load() * s;
                T::store(kept + a * y.load())
            })
        }
        InplaceOp::MulAddcmul { scale, value } => {
            let (s, v) = (c(scale), c(value));
            let srcs = [src::<T>(srcs, 0), src::<T>(srcs, 1)];
            apply(d, dl, srcs, move |x, [y, z]| {
                let kept = x.load() * s;
                T::store(kept + v * y.load() * z.load())
            })
        }
        InplaceOp::AddcdivSqrt { value, scale, eps } => {
            let (v, s, e) = (c(value), c(scale), c(eps));
            let srcs = [src::<T>(srcs, 0), src::<T>(srcs, 1)];
            apply(d, dl, srcs, move |x, [y, z]| {
                let den = z.load().sqrt() * s + e;
                T::store(x.load() + v * (y.load() / den))
            })
        }
        InplaceOp::MulMaxAbs { scale, eps } => {
            let (s, e) = (c(scale), c(eps));
            let maximum = float_op::<T::C>(BinaryOp::Maximum);
            apply(d, dl, [src::<T>(srcs, 0)], move |x, [y]| {
                T::store(maximum(x.load() * s, y.load().abs() + e))
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
    let (datas, layouts) = split_sources(srcs);
    if let Some((start, end)) = dl.contiguous_offset()
        && let Some(s) = dense_sources(srcs, n)
    {
        let body = |i: usize, chunk: &mut [T]| {
            let base = i * CHUNK;
            let mut s = s;
            for sk in &mut s {
                *sk = &sk[base..base + chunk.len()];
            }
            for (j, x) in chunk.iter_mut().enumerate() {
                let mut v = [*x; K];
                for (vk, sk) in v.iter_mut().zip(&s) {
                    *vk = sk[j];
                }
                *x = f(*x, v);
            }
        };
        par::for_each_chunk_mut(&mut d[start..end], CHUNK, n >= PARALLEL_THRESHOLD, &body);
        return;
    }
    match Walk::new(dl, layouts) {
        Some(walk) => walk.run(d, datas, &f),
        None => {
            // More than MAX_RANK dims that do not merge: offsets iterators (allocate).
            let mut its = layouts.map(|l| StridedOffsets::starting_at(l, 0));
            for o in StridedOffsets::starting_at(dl, 0) {
                d[o] = f(d[o], read_next(&datas, &mut its));
            }
        }
    }
}

// The helpers below depend on the element type and `K` only, not on the kernel closure, so
// each is compiled a few times instead of once per in-place kernel.

/// The sources' buffers and layouts, apart.
fn split_sources<'a, T, const K: usize>(
    srcs: [(&'a [T], &'a Layout); K],
) -> ([&'a [T]; K], [&'a Layout; K]) {
    (srcs.map(|s| s.0), srcs.map(|s| s.1))
}

/// Each source's `n` elements as one slice, when every source is contiguous.
fn dense_sources<'a, T, const K: usize>(
    srcs: [(&'a [T], &'a Layout); K],
    n: usize,
) -> Option<[&'a [T]; K]> {
    srcs.iter()
        .all(|(_, l)| l.is_contiguous())
        .then(|| srcs.map(|(data, l)| &data[l.offset()..][..n]))
}

/// The next element of each source, read through its offsets iterator.
fn read_next<T: Copy, const K: usize>(
    datas: &[&[T]; K],
    its: &mut [StridedOffsets<'_>; K],
) -> [T; K] {
    std::array::from_fn(|k| datas[k][its[k].next().expect("same dims")])
}
