//! Shapes, dimension arithmetic and broadcasting.

use crate::{Error, Result};

/// The sizes of a tensor's dimensions, outermost first.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimension sizes.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The shape of a 0-d tensor (a scalar).
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// Dimension sizes.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Total number of elements (1 for a scalar).
    ///
    /// Saturates at `usize::MAX` when the product overflows; no tensor has such a shape (every
    /// constructor checks it with [`Shape::checked_elem_count`]), so for a tensor's shape this is
    /// exact.
    pub fn elem_count(&self) -> usize {
        if self.0.contains(&0) {
            return 0;
        }
        self.0
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// The element count, or an [`Error::Overflow`] naming `op` and the shape when the sizes
    /// cannot be addressed: the product of the non-zero dims (which bounds every row-major
    /// stride) must fit in `isize`, as Rust slices and pointer offsets require.
    pub fn checked_elem_count(&self, op: &'static str) -> Result<usize> {
        let nonzero = self
            .0
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= isize::MAX as usize);
        match nonzero {
            Some(_) => Ok(self.elem_count()),
            None => Err(Error::Overflow {
                op,
                what: format!("the element count of shape {self}"),
            }),
        }
    }

    /// Row-major (C-order) strides of a contiguous tensor of this shape.
    ///
    /// Exact for shapes that passed [`Shape::checked_elem_count`]; saturates otherwise.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.rank()];
        let mut acc = 1usize;
        for (stride, &size) in strides.iter_mut().zip(&self.0).rev() {
            *stride = acc;
            acc = acc.saturating_mul(size);
        }
        strides
    }

    /// Resolves a possibly negative dimension index against this rank.
    pub fn dim(&self, op: &'static str, dim: isize) -> Result<usize> {
        resolve_dim(op, dim, self.rank())
    }

    /// The shape two operands broadcast to, following NumPy/PyTorch rules.
    pub fn broadcast(&self, other: &Shape, op: &'static str) -> Result<Shape> {
        let rank = self.rank().max(other.rank());
        let mut dims = vec![0; rank];
        for i in 0..rank {
            let a = dim_from_end(&self.0, rank - 1 - i);
            let b = dim_from_end(&other.0, rank - 1 - i);
            dims[i] = match (a, b) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: self.clone(),
                        rhs: other.clone(),
                    });
                }
            };
        }
        Ok(Shape(dims))
    }
}

fn dim_from_end(dims: &[usize], from_end: usize) -> usize {
    if from_end < dims.len() {
        dims[dims.len() - 1 - from_end]
    } else {
        1
    }
}

/// Resolves a possibly negative dimension index (`-1` is the last) against `rank`.
pub fn resolve_dim(op: &'static str, dim: isize, rank: usize) -> Result<usize> {
    let resolved = if dim < 0 {
        dim.checked_add_unsigned(rank).unwrap_or(-1)
    } else {
        dim
    };
    if resolved < 0 || resolved as usize >= rank {
        return Err(Error::DimOutOfRange { op, dim, rank });
    }
    Ok(resolved as usize)
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(d: &[usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy_rules() {
        let a = Shape::new([3, 1, 5]);
        let b = Shape::new([4, 1]);
        assert_eq!(a.broadcast(&b, "t").unwrap().dims(), &[3, 4, 5]);
        let err = Shape::new([3])
            .broadcast(&Shape::new([4]), "add")
            .unwrap_err();
        assert_eq!(err.to_string(), "add: shape mismatch between [3] and [4]");
    }

    #[test]
    fn contiguous_strides_are_row_major() {
        assert_eq!(Shape::new([2, 3, 4]).contiguous_strides(), vec![12, 4, 1]);
        assert_eq!(Shape::scalar().contiguous_strides(), Vec::<usize>::new());
    }

    #[test]
    fn negative_dims_count_from_the_end() {
        assert_eq!(resolve_dim("t", -1, 3).unwrap(), 2);
        assert!(resolve_dim("t", 3, 3).is_err());
        assert!(resolve_dim("t", -4, 3).is_err());
        assert!(resolve_dim("t", isize::MIN, 3).is_err());
    }

    #[test]
    fn element_counts_never_wrap() {
        let huge = Shape::new([1 << 32, 1 << 32]);
        assert_eq!(huge.elem_count(), usize::MAX);
        assert_eq!(
            huge.checked_elem_count("zeros").unwrap_err().to_string(),
            "zeros: the element count of shape [4294967296, 4294967296] overflows the addressable size"
        );
        assert_eq!(Shape::new([0, 1 << 40]).checked_elem_count("t").unwrap(), 0);
        assert!(
            Shape::new([0, 1 << 32, 1 << 32])
                .checked_elem_count("t")
                .is_err()
        );
        assert_eq!(Shape::scalar().checked_elem_count("t").unwrap(), 1);
    }
}
