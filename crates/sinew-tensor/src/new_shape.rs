//! The target of [`Tensor::reshape`](crate::Tensor::reshape) and
//! [`Tensor::view`](crate::Tensor::view): a [`Shape`], or signed sizes with at most one `-1`
//! that the element count fills in, as in PyTorch's `x.view(-1, 16 * 5 * 5)`.

use crate::{Error, Result, Shape};

/// A shape to reshape to. Made from anything that is a [`Shape`] (`[usize; N]`, `Vec<usize>`,
/// `()`...) or from signed sizes (`[i32; N]`, `[i64; N]`, `[isize; N]`, their slices and
/// `Vec`s), where one size may be `-1`: "whatever the element count leaves". An array of
/// integer literals such as `[-1, 784]` or `[2, 3]` is `[i32; N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewShape(Target);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Exact(Shape),
    Signed(Vec<i64>),
}

impl NewShape {
    /// The shape for a tensor of `elem_count` elements: the exact shape, or the signed sizes
    /// with the `-1` filled in. Errors (naming `op`) for a size below `-1`, more than one `-1`,
    /// a product that overflows, or a `-1` that no whole size fills (PyTorch's rules, including
    /// that `-1` is ambiguous beside a zero size).
    pub fn resolve(&self, op: &'static str, elem_count: usize) -> Result<Shape> {
        let sizes = match &self.0 {
            Target::Exact(shape) => return Ok(shape.clone()),
            Target::Signed(sizes) => sizes,
        };
        let shown = || format!("{sizes:?}");
        let mut hole = None;
        let mut dims = Vec::with_capacity(sizes.len());
        for (i, &size) in sizes.iter().enumerate() {
            if size == -1 {
                if hole.replace(i).is_some() {
                    return Err(Error::invalid(
                        op,
                        format!("shape {}: only one dimension can be -1", shown()),
                    ));
                }
                dims.push(1);
            } else {
                let dim = usize::try_from(size).map_err(|_| {
                    Error::invalid(op, format!("shape {}: invalid size {size}", shown()))
                })?;
                dims.push(dim);
            }
        }
        let Some(hole) = hole else {
            return Ok(Shape::new(dims));
        };
        let known = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::Overflow {
                op,
                what: format!("the sizes of shape {}", shown()),
            })?;
        if known == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "shape {}: -1 beside a size of 0 could be any size (input of {elem_count} elements)",
                    shown()
                ),
            ));
        }
        if !elem_count.is_multiple_of(known) {
            return Err(Error::invalid(
                op,
                format!(
                    "shape {} is invalid for an input of {elem_count} elements",
                    shown()
                ),
            ));
        }
        dims[hole] = elem_count / known;
        Ok(Shape::new(dims))
    }
}

impl<T: Into<Shape>> From<T> for NewShape {
    fn from(shape: T) -> Self {
        NewShape(Target::Exact(shape.into()))
    }
}

/// `From` signed sizes: arrays, references to arrays, slices and `Vec`s of `$t`.
macro_rules! signed_sizes {
    ($($t:ty),*) => {$(
        impl<const N: usize> From<[$t; N]> for NewShape {
            fn from(sizes: [$t; N]) -> Self {
                NewShape::from(&sizes[..])
            }
        }

        impl<const N: usize> From<&[$t; N]> for NewShape {
            fn from(sizes: &[$t; N]) -> Self {
                NewShape::from(&sizes[..])
            }
        }

        impl From<Vec<$t>> for NewShape {
            fn from(sizes: Vec<$t>) -> Self {
                NewShape::from(&sizes[..])
            }
        }

        impl From<&[$t]> for NewShape {
            fn from(sizes: &[$t]) -> Self {
                // Every `$t` here (i32, i64, isize) fits in i64 on the platforms Rust supports.
                NewShape(Target::Signed(sizes.iter().map(|&s| s as i64).collect()))
            }
        }
    )*};
}

signed_sizes!(i32, i64, isize);

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(shape: impl Into<NewShape>, count: usize) -> Result<Vec<usize>> {
        Ok(shape.into().resolve("t", count)?.dims().to_vec())
    }

    #[test]
    fn minus_one_takes_what_the_count_leaves() {
        assert_eq!(resolve([-1, 784], 64 * 784).unwrap(), vec![64, 784]);
        assert_eq!(resolve([2, -1, 5], 60).unwrap(), vec![2, 6, 5]);
        assert_eq!(resolve([-1], 12).unwrap(), vec![12]);
        assert_eq!(resolve(vec![3i64, -1], 0).unwrap(), vec![3, 0]);
        assert_eq!(resolve([2, 3], 6).unwrap(), vec![2, 3]);
        assert_eq!(
            resolve([4usize, 5], 7).unwrap(),
            vec![4, 5],
            "exact shapes pass through"
        );
    }

    #[test]
    fn bad_signed_sizes_are_errors() {
        let message = |r: Result<Vec<usize>>| r.unwrap_err().to_string();
        assert!(message(resolve([-1, -1], 4)).contains("only one dimension can be -1"));
        assert!(message(resolve([-2, 2], 4)).contains("invalid size -2"));
        assert!(message(resolve([-1, 5], 12)).contains("invalid for an input of 12 elements"));
        assert!(message(resolve([0, -1], 0)).contains("could be any size"));
        let huge = [isize::MAX, isize::MAX, -1];
        assert!(matches!(resolve(huge, 1), Err(Error::Overflow { .. })));
    }
}
