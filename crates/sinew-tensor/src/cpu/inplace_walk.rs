//! The strided walk of the in-place kernels: a destination view and `K` same-shape source views,
//! walked row by row with all state on the stack (no allocation), rows split over rayon when
//! the destination provably has no two elements in one slot.

use super::PARALLEL_THRESHOLD;
use crate::Layout;

/// Elements per parallel work item.
pub(super) const CHUNK: usize = 1 << 13;

/// Most dims (after merging) the walk handles.
const MAX_RANK: usize = 16;

/// A raw destination pointer shared by the row tasks.
#[derive(Clone, Copy)]
struct DstPtr<T>(*mut T);
// SAFETY: tasks write disjoint elements (the view is checked injective before going parallel)
// of a buffer the caller holds `&mut` for the whole walk.
unsafe impl<T: Send> Send for DstPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for DstPtr<T> {}

/// A strided walk over a view and `K` same-shape sources, state on the stack.
pub(super) struct Walk<const K: usize> {
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
    pub(super) fn new(dl: &Layout, srcs: [&Layout; K]) -> Option<Self> {
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

    pub(super) fn run<T: Copy + Send + Sync>(
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
            super::par::for_each_index(tasks, true, &|t| {
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
            if K == 1 && sd == 1 && ss[0] <= 1 {
                // One source read along the row or broadcast over it (a bias added to the
                // rows of an activation): plain slices, which the compiler vectorises.
                // SAFETY: `od..od + inner` is one row of the destination view (unit stride),
                // inside the buffer as for the general loop below; the caller's exclusive
                // `&mut` makes the slice the only access to it, other tasks take other rows.
                let dst = unsafe { std::slice::from_raw_parts_mut(ptr.0.add(od), inner) };
                row_with_one_source(dst, srcs[0], os[0], ss[0], |x, s| {
                    f(x, std::array::from_fn(|_| s))
                });
            } else {
                for j in 0..inner {
                    let v = gather(&srcs, &os, &ss, j);
                    // SAFETY: `od + j * sd` is an element of the destination view, inside the
                    // buffer (`storage_extent() <= len` checked in release builds by `inplace` and `copy_into`);
                    // concurrent tasks touch other rows, hence other slots (`injective`).
                    unsafe {
                        let p = ptr.0.add(od + j * sd);
                        *p = f(*p, v);
                    }
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

/// `dst[j] = f(dst[j], src[start + j * stride])` for a `stride` of 0 (one value broadcast over
/// the row) or 1.
fn row_with_one_source<T: Copy>(
    dst: &mut [T],
    src: &[T],
    start: usize,
    stride: usize,
    f: impl Fn(T, T) -> T,
) {
    if stride == 0 {
        let v = src[start];
        for x in dst.iter_mut() {
            *x = f(*x, v);
        }
    } else {
        let n = dst.len();
        for (x, &v) in dst.iter_mut().zip(&src[start..start + n]) {
            *x = f(*x, v);
        }
    }
}

/// Element `j` of each source row: `srcs[k][os[k] + j * ss[k]]` (a function of its own so that
/// it is compiled once per element type, not once per kernel closure).
fn gather<T: Copy, const K: usize>(
    srcs: &[&[T]; K],
    os: &[usize; K],
    ss: &[usize; K],
    j: usize,
) -> [T; K] {
    std::array::from_fn(|k| srcs[k][os[k] + j * ss[k]])
}
