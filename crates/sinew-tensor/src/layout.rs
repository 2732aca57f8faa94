//! How a tensor's elements sit in its storage: shape, strides and offset.
//!
//! Every view (permute, narrow, broadcast, reshape without copy) is a new [`Layout`] over the same
//! storage. Kernels walk layouts with [`StridedOffsets`], or take a fast path when
//! [`Layout::contiguous_offset`] says the elements are one dense run.

use crate::{Error, Result, Shape};

/// Shape, per-dimension strides (in elements) and starting offset of a view into storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// A dense row-major layout starting at offset 0.
    pub fn contiguous(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    /// A layout from explicit parts. Callers guarantee it stays inside its storage (kernels that
    /// compute raw addresses re-check [`Layout::checked_storage_extent`] before reading).
    pub fn from_parts(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.rank(), strides.len());
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// The view's shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The view's dimension sizes.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Strides in elements, one per dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Offset of the first element in the storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of elements in the view.
    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    /// True when the elements are one dense row-major run (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&size, &stride) in self.dims().iter().zip(&self.strides).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected *= size;
        }
        true
    }

    /// `Some((start, end))` storage range when the view is contiguous.
    ///
    /// An empty view gives the empty range `(0, 0)`: its offset may point past the end of the
    /// storage (`narrow(d, size, 0)` of a view that already starts inside it), so it must not be
    /// used to slice.
    pub fn contiguous_offset(&self) -> Option<(usize, usize)> {
        if self.elem_count() == 0 {
            return Some((0, 0));
        }
        self.is_contiguous()
            .then(|| (self.offset, self.offset + self.elem_count()))
    }

    /// One past the largest storage index the view touches (0 when empty).
    ///
    /// Saturates at `usize::MAX` if the sum overflows (see [`Layout::checked_storage_extent`]).
    pub fn storage_extent(&self) -> usize {
        self.checked_storage_extent().unwrap_or(usize::MAX)
    }

    /// One past the largest storage index the view touches (0 when empty), or `None` when that
    /// index does not fit in `usize`. Kernels that compute addresses themselves compare this
    /// with the storage length before reading.
    pub fn checked_storage_extent(&self) -> Option<usize> {
        if self.elem_count() == 0 {
            return Some(0);
        }
        self.dims()
            .iter()
            .zip(&self.strides)
            .try_fold(self.offset, |acc, (&d, &s)| {
                acc.checked_add((d - 1).checked_mul(s)?)
            })?
            .checked_add(1)
    }

    /// Reorders dimensions: dimension `i` of the result is dimension `order[i]` of `self`.
    pub fn permute(&self, order: &[usize]) -> Result<Layout> {
        let rank = self.shape.rank();
        let mut seen = vec![false; rank];
        if order.len() != rank
            || order
                .iter()
                .any(|&d| d >= rank || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{order:?} is not a permutation of the {rank} dims of {}",
                    self.shape
                ),
            ));
        }
        Ok(Layout {
            shape: Shape::new(order.iter().map(|&d| self.dims()[d]).collect::<Vec<_>>()),
            strides: order.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    /// Keeps `len` elements of dimension `dim` starting at `start`, taking every `step`-th.
    ///
    /// Every bound is computed with checked arithmetic, so a huge `start`, `len` or `step` is an
    /// error, never a wrapped offset.
    pub fn slice(&self, dim: usize, start: usize, len: usize, step: usize) -> Result<Layout> {
        let rank = self.shape.rank();
        let Some(&size) = self.dims().get(dim) else {
            return Err(Error::DimOutOfRange {
                op: "narrow",
                dim: dim as isize,
                rank,
            });
        };
        let err = || {
            Error::invalid(
                "narrow",
                format!(
                    "range start {start}, len {len}, step {step} out of bounds for dim {dim} of size {size}"
                ),
            )
        };
        let last = len
            .saturating_sub(1)
            .checked_mul(step)
            .and_then(|span| start.checked_add(span));
        match last {
            _ if step == 0 || start > size => return Err(err()),
            Some(last) if len == 0 || last < size => {}
            _ => return Err(err()),
        }
        let mut dims = self.dims().to_vec();
        dims[dim] = len;
        let mut strides = self.strides.clone();
        // Both products are bounded by the extent of the original view when `len > 1` (resp.
        // `start < size`); for the other cases the stride/offset of the new dim is never used to
        // reach an element, so a saturated value is harmless and is never wrapped.
        strides[dim] = if len > 1 {
            strides[dim].checked_mul(step).ok_or_else(err)?
        } else {
            strides[dim]
        };
        let offset = if len > 0 {
            start
                .checked_mul(self.strides[dim])
                .and_then(|o| o.checked_add(self.offset))
                .ok_or_else(err)?
        } else {
            self.offset
        };
        Ok(Layout {
            shape: Shape::new(dims),
            strides,
            offset,
        })
    }

    /// Expands size-1 dimensions (and new leading ones) to `shape` with stride 0.
    pub fn broadcast_to(&self, shape: &Shape) -> Result<Layout> {
        let rank = shape.rank();
        let err = || Error::ShapeMismatch {
            op: "broadcast_to",
            lhs: self.shape.clone(),
            rhs: shape.clone(),
        };
        if rank < self.shape.rank() {
            return Err(err());
        }
        shape.checked_elem_count("broadcast_to")?;
        let lead = rank - self.shape.rank();
        let mut strides = vec![0; rank];
        for i in 0..rank {
            if i < lead {
                continue;
            }
            let (src, dst) = (self.dims()[i - lead], shape.dims()[i]);
            strides[i] = if src == dst {
                self.strides[i - lead]
            } else if src == 1 {
                0
            } else {
                return Err(err());
            };
        }
        Ok(Layout {
            shape: shape.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// Inserts a size-1 dimension at `dim`.
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut dims = self.dims().to_vec();
        let mut strides = self.strides.clone();
        // Any stride is valid for a size-1 dim; saturate rather than wrap.
        let stride = if dim < dims.len() {
            strides[dim].saturating_mul(dims[dim])
        } else {
            1
        };
        dims.insert(dim, 1);
        strides.insert(dim, stride);
        Layout {
            shape: Shape::new(dims),
            strides,
            offset: self.offset,
        }
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: usize) -> Layout {
        let mut dims = self.dims().to_vec();
        let mut strides = self.strides.clone();
        dims.remove(dim);
        strides.remove(dim);
        Layout {
            shape: Shape::new(dims),
            strides,
            offset: self.offset,
        }
    }

    /// The same elements under `shape` without copying, when the strides allow it.
    ///
    /// Works like PyTorch's `view`: returns `None` when a copy is needed.
    pub fn reshape(&self, shape: &Shape) -> Option<Layout> {
        // An empty view touches no element, so any strides describe it (PyTorch agrees).
        if self.is_contiguous() || self.elem_count() == 0 {
            return Some(Layout {
                shape: shape.clone(),
                strides: shape.contiguous_strides(),
                offset: self.offset,
            });
        }
        // Group old dims into runs that are contiguous with each other, then map new dims onto runs.
        let old: Vec<(usize, usize)> = self
            .dims()
            .iter()
            .zip(&self.strides)
            .filter(|(d, _)| **d != 1)
            .map(|(&d, &s)| (d, s))
            .collect();
        let mut new_strides = vec![0; shape.rank()];
        let mut oi = 0;
        let mut ni = 0;
        let new_dims = shape.dims();
        while ni < new_dims.len() {
            if new_dims[ni] == 1 {
                new_strides[ni] = 1;
                ni += 1;
                continue;
            }
            if oi >= old.len() {
                return None;
            }
            // Take a run of old dims [oi, oj) that are mutually contiguous.
            let mut oj = oi + 1;
            while oj < old.len() && old[oj - 1].1 == old[oj].0 * old[oj].1 {
                oj += 1;
            }
            // Split the run into new dims, innermost last, consuming whole old dims only.
            // Products of sizes and strides of an existing view: bounded by its element count and
            // storage extent, but checked anyway so a corrupt layout cannot wrap.
            let run_size: usize = old[oi..oj]
                .iter()
                .try_fold(1usize, |acc, p| acc.checked_mul(p.0))?;
            let inner_stride = old[oj - 1].1;
            let mut acc = 1;
            let start = ni;
            while ni < new_dims.len()
                && acc < run_size
                && acc.checked_mul(new_dims[ni]).is_some_and(|p| p <= run_size)
            {
                acc *= new_dims[ni];
                ni += 1;
            }
            if acc != run_size {
                return None;
            }
            let mut stride = inner_stride;
            for k in (start..ni).rev() {
                new_strides[k] = stride;
                stride = stride.saturating_mul(new_dims[k]);
            }
            oi = oj;
        }
        (oi == old.len()).then(|| Layout {
            shape: shape.clone(),
            strides: new_strides,
            offset: self.offset,
        })
    }

    /// Storage offsets of every element, in row-major order of the view.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::starting_at(self, 0)
    }
}

/// Iterator over the storage offsets of a layout's elements in row-major order.
///
/// Can start at any linear position, so parallel kernels give each chunk its own iterator.
#[derive(Debug, Clone)]
pub struct StridedOffsets<'a> {
    dims: &'a [usize],
    strides: &'a [usize],
    index: Vec<usize>,
    next_offset: usize,
    remaining: usize,
}

impl<'a> StridedOffsets<'a> {
    /// Offsets of the elements from linear position `start` to the end.
    pub fn starting_at(layout: &'a Layout, start: usize) -> Self {
        let dims = layout.dims();
        let strides = layout.strides();
        let total = layout.elem_count();
        let mut index = vec![0; dims.len()];
        let mut rest = start.min(total);
        let mut offset = layout.offset();
        for i in (0..dims.len()).rev() {
            if dims[i] == 0 {
                break;
            }
            index[i] = rest % dims[i];
            rest /= dims[i];
            offset += index[i] * strides[i];
        }
        StridedOffsets {
            dims,
            strides,
            index,
            next_offset: offset,
            remaining: total.saturating_sub(start),
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.next_offset;
        for i in (0..self.dims.len()).rev() {
            self.index[i] += 1;
            self.next_offset += self.strides[i];
            if self.index[i] < self.dims[i] {
                return Some(current);
            }
            self.next_offset -= self.strides[i] * self.index[i];
            self.index[i] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for StridedOffsets<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_offsets(l: &Layout) -> Vec<usize> {
        let dims = l.dims();
        let n = l.elem_count();
        (0..n)
            .map(|mut lin| {
                let mut off = l.offset();
                for i in (0..dims.len()).rev() {
                    off += (lin % dims[i]) * l.strides()[i];
                    lin /= dims[i];
                }
                off
            })
            .collect()
    }

    #[test]
    fn offsets_of_a_transposed_view() {
        let l = Layout::contiguous([2, 3]).permute(&[1, 0]).unwrap();
        assert_eq!(l.offsets().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
    }

    #[test]
    fn offsets_starting_midway_match_a_full_walk() {
        let l = Layout::contiguous([3, 4, 5])
            .slice(2, 1, 2, 2)
            .unwrap()
            .permute(&[2, 0, 1])
            .unwrap();
        let all = naive_offsets(&l);
        assert_eq!(l.offsets().collect::<Vec<_>>(), all);
        for start in 0..all.len() {
            let part: Vec<_> = StridedOffsets::starting_at(&l, start).collect();
            assert_eq!(part, all[start..]);
        }
    }

    #[test]
    fn reshape_of_a_narrowed_view_keeps_strides_when_possible() {
        // [4, 6] -> narrow dim 0 to rows 1..3 -> [2, 6] contiguous rows: reshape to [12] works.
        let l = Layout::contiguous([4, 6]).slice(0, 1, 2, 1).unwrap();
        let r = l.reshape(&Shape::new([12])).unwrap();
        assert_eq!(naive_offsets(&r), naive_offsets(&l));
        // Narrowing columns breaks contiguity across rows: [4, 3] -> [12] needs a copy.
        let l = Layout::contiguous([4, 6]).slice(1, 0, 3, 1).unwrap();
        assert!(l.reshape(&Shape::new([12])).is_none());
        // ...but splitting the row dimension is still a view.
        let r = l.reshape(&Shape::new([2, 2, 3])).unwrap();
        assert_eq!(naive_offsets(&r), naive_offsets(&l));
    }

    #[test]
    fn broadcast_sets_zero_strides() {
        let l = Layout::contiguous([3, 1])
            .broadcast_to(&Shape::new([2, 3, 4]))
            .unwrap();
        assert_eq!(l.strides(), &[0, 1, 0]);
        assert!(
            Layout::contiguous([3])
                .broadcast_to(&Shape::new([4]))
                .is_err()
        );
    }

    #[test]
    fn slice_bounds_never_wrap() {
        let l = Layout::contiguous([4, 5]);
        assert!(l.slice(0, 2, usize::MAX, 1).is_err());
        assert!(l.slice(0, 1, 2, usize::MAX).is_err());
        assert!(l.slice(0, usize::MAX, 0, 1).is_err());
        assert!(l.slice(2, 0, 1, 1).is_err());
        assert_eq!(l.slice(0, 4, 0, 1).unwrap().dims(), &[0, 5]);
        assert_eq!(l.slice(1, 1, 1, usize::MAX).unwrap().strides(), &[5, 1]);
        assert_eq!(
            Layout::from_parts(Shape::new([2]), vec![usize::MAX], 1).checked_storage_extent(),
            None
        );
    }

    #[test]
    fn empty_views_have_no_offsets() {
        let l = Layout::contiguous([2, 0, 3]);
        assert_eq!(l.offsets().count(), 0);
        assert_eq!(l.storage_extent(), 0);
    }
}
