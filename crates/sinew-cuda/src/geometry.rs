//! How elementwise kernels see strided views: the `Geometry` struct passed by value.
//!
//! Up to three views of one shape share the dims; each has its own strides and offset. Dims are
//! coalesced on the host first (size-1 dims dropped, neighbours that are contiguous with each other
//! in every view merged), so most views reach the kernel with one or two dims, and a view that is
//! one dense run is flagged so the kernel takes the contiguous fast path.

use sinew_tensor::{Error, Layout, Result};

/// Most dims a view may have after coalescing.
pub const MAX_DIMS: usize = 8;
/// Most views one kernel reads or writes through a geometry.
pub const MAX_OPERANDS: usize = 3;

/// Shape, strides and offsets of up to three same-shape views (mirrors `cuda/common.cuh`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Geometry {
    /// Number of dims after coalescing.
    pub ndim: u32,
    /// Bit `k` set: view `k` is one dense row-major run starting at `offsets[k]`.
    pub contiguous: u32,
    /// Dim sizes (first `ndim` used).
    pub dims: [u32; MAX_DIMS],
    /// Per view, the stride of each dim in elements.
    pub strides: [[u64; MAX_DIMS]; MAX_OPERANDS],
    /// Per view, the offset of its first element.
    pub offsets: [u64; MAX_OPERANDS],
}

/// Merges dims of `dims` (with one stride list per view) that need no separate index.
///
/// Returns the coalesced dims and strides; an empty list means a single element.
pub fn coalesce(dims: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (d, &size) in dims.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let mergeable = !out_dims.is_empty()
            && strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| *o.last().expect("same length as out_dims") == s[d] * size);
        if mergeable {
            *out_dims.last_mut().expect("non-empty") *= size;
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                *o.last_mut().expect("non-empty") = s[d];
            }
        } else {
            out_dims.push(size);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[d]);
            }
        }
    }
    (out_dims, out_strides)
}

impl Geometry {
    /// The geometry of same-shape views (at most [`MAX_OPERANDS`]).
    ///
    /// Errors when the shape has more than `u32::MAX` elements or, after coalescing, more than
    /// [`MAX_DIMS`] dims.
    pub fn new(op: &'static str, views: &[&Layout]) -> Result<Geometry> {
        assert!(
            !views.is_empty() && views.len() <= MAX_OPERANDS,
            "1 to 3 views"
        );
        let first = views[0];
        let count = first.elem_count();
        if u32::try_from(count).is_err() {
            return Err(Error::invalid(
                op,
                format!("{count} elements exceed the CUDA kernels' 2^32 limit"),
            ));
        }
        // The same merge as [`coalesce`], straight into the fixed arrays (no allocation: this
        // runs for every elementwise launch).
        let mut g = Geometry::default();
        let mut nd = 0usize;
        for (d, &size) in first.dims().iter().enumerate() {
            if size == 1 {
                continue;
            }
            let mergeable = nd > 0
                && views.iter().enumerate().all(|(k, view)| {
                    view.strides()[d]
                        .checked_mul(size)
                        .is_some_and(|s| g.strides[k][nd - 1] == s as u64)
                });
            if mergeable {
                // Cannot overflow: the product of the dims is at most `count` < 2^32.
                g.dims[nd - 1] *= size as u32;
                for (k, view) in views.iter().enumerate() {
                    g.strides[k][nd - 1] = view.strides()[d] as u64;
                }
                continue;
            }
            if nd == MAX_DIMS {
                return Err(Error::invalid(
                    op,
                    format!(
                        "views of shape {} need more than {MAX_DIMS} dims after merging; CUDA \
                         kernels take {MAX_DIMS}",
                        first.shape()
                    ),
                ));
            }
            g.dims[nd] = size as u32;
            for (k, view) in views.iter().enumerate() {
                g.strides[k][nd] = view.strides()[d] as u64;
            }
            nd += 1;
        }
        g.ndim = nd as u32;
        for (k, view) in views.iter().enumerate() {
            g.offsets[k] = view.offset() as u64;
            if view.is_contiguous() {
                g.contiguous |= 1 << k;
            }
        }
        Ok(g)
    }

    /// Storage offset of element `index` (row-major) of view `k`: what the kernel computes.
    pub fn offset_of(&self, k: usize, index: u32) -> u64 {
        if self.contiguous >> k & 1 == 1 {
            return self.offsets[k] + index as u64;
        }
        let mut rest = index;
        let mut off = self.offsets[k];
        for d in (0..self.ndim as usize).rev() {
            off += (rest % self.dims[d]) as u64 * self.strides[k][d];
            rest /= self.dims[d];
        }
        off
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::Shape;

    fn check(views: &[&Layout]) {
        let g = Geometry::new("test", views).unwrap();
        // The in-place merge agrees with `coalesce`.
        let strides: Vec<&[usize]> = views.iter().map(|l| l.strides()).collect();
        let (dims, merged) = coalesce(views[0].dims(), &strides);
        assert_eq!(g.ndim as usize, dims.len());
        for (i, &d) in dims.iter().enumerate() {
            assert_eq!(g.dims[i] as usize, d);
            for k in 0..views.len() {
                assert_eq!(g.strides[k][i] as usize, merged[k][i]);
            }
        }
        for (k, view) in views.iter().enumerate() {
            let expect: Vec<u64> = view.offsets().map(|o| o as u64).collect();
            let got: Vec<u64> = (0..view.elem_count() as u32)
                .map(|i| g.offset_of(k, i))
                .collect();
            assert_eq!(got, expect, "view {k} of {views:?}");
        }
    }

    #[test]
    fn contiguous_views_collapse_to_one_dim() {
        let l = Layout::contiguous([2, 3, 4]);
        let g = Geometry::new("test", &[&l, &l]).unwrap();
        assert_eq!((g.ndim, g.contiguous, g.dims[0]), (1, 0b11, 24));
    }

    #[test]
    fn strided_and_broadcast_views_match_the_layout_walk() {
        let base = Layout::contiguous([4, 6, 5]);
        let transposed = base.permute(&[2, 0, 1]).unwrap();
        let narrowed = base.slice(1, 1, 3, 2).unwrap().permute(&[1, 0, 2]).unwrap();
        let bcast = Layout::contiguous([6, 1])
            .broadcast_to(&Shape::new([5, 6, 4]))
            .unwrap();
        check(&[&transposed, &Layout::contiguous([5, 4, 6])]);
        check(&[&narrowed, &narrowed, &Layout::contiguous([3, 4, 5])]);
        check(&[&bcast, &Layout::contiguous([5, 6, 4])]);
        let scalar = Layout::contiguous(Shape::scalar())
            .broadcast_to(&Shape::new([3, 7]))
            .unwrap();
        check(&[
            &Layout::contiguous([3, 7])
                .permute(&[1, 0])
                .unwrap()
                .permute(&[1, 0])
                .unwrap(),
            &scalar,
        ]);
    }

    #[test]
    fn coalescing_keeps_dims_that_differ_in_one_view() {
        // A [3, 4] row-major view and its transpose's layout cannot merge their two dims.
        let (dims, strides) = coalesce(&[3, 4], &[&[4, 1], &[1, 3]]);
        assert_eq!(dims, vec![3, 4]);
        assert_eq!(strides, vec![vec![4, 1], vec![1, 3]]);
        let (dims, _) = coalesce(&[2, 1, 3, 4], &[&[12, 99, 4, 1]]);
        assert_eq!(dims, vec![24]);
    }

    #[test]
    fn too_many_dims_is_an_error() {
        let dims = [2usize; 10];
        let l = Layout::contiguous(dims)
            .permute(&[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
            .unwrap();
        let out = Layout::contiguous(dims);
        assert!(Geometry::new("copy", &[&l, &out]).is_err());
        assert_eq!(std::mem::size_of::<Geometry>(), 256);
    }
}
