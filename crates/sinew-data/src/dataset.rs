//! The [`Dataset`] trait and its combinators: map, subset, concat, random split.
//!
//! PyTorch equivalent: `torch.utils.data.Dataset`, `Subset`, `ConcatDataset`, `random_split`.

use std::sync::Arc;

use crate::error::{DataError, Result};
use crate::rng::permutation;

/// A finite, indexable collection of examples, shareable between loader threads.
pub trait Dataset: Send + Sync {
    /// The example type.
    type Item;

    /// Number of examples.
    fn len(&self) -> usize;

    /// The example at `index` (an error past the end, never a panic).
    fn get(&self, index: usize) -> Result<Self::Item>;

    /// True when there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Self::Item> {
        (**self).get(index)
    }
}

impl<D: Dataset + ?Sized> Dataset for &D {
    type Item = D::Item;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Self::Item> {
        (**self).get(index)
    }
}

/// Checks `index < len`.
pub(crate) fn check_index(index: usize, len: usize) -> Result<()> {
    if index < len {
        Ok(())
    } else {
        Err(DataError::IndexOutOfRange { index, len })
    }
}

/// A dataset over a vector of items (cloned on `get`).
#[derive(Clone, Debug)]
pub struct VecDataset<T> {
    items: Vec<T>,
}

impl<T> VecDataset<T> {
    /// Wraps `items`.
    pub fn new(items: Vec<T>) -> Self {
        VecDataset { items }
    }

    /// The items.
    pub fn items(&self) -> &[T] {
        &self.items
    }
}

impl<T: Clone + Send + Sync> Dataset for VecDataset<T> {
    type Item = T;
    fn len(&self) -> usize {
        self.items.len()
    }
    fn get(&self, index: usize) -> Result<T> {
        check_index(index, self.items.len())?;
        Ok(self.items[index].clone())
    }
}

/// A dataset whose items are another's passed through a function.
#[derive(Clone, Debug)]
pub struct Map<D, F> {
    inner: D,
    f: F,
}

impl<D, F, U> Dataset for Map<D, F>
where
    D: Dataset,
    F: Fn(D::Item) -> Result<U> + Send + Sync,
{
    type Item = U;
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn get(&self, index: usize) -> Result<U> {
        (self.f)(self.inner.get(index)?)
    }
}

/// The examples of a dataset at chosen indices, in the order given.
#[derive(Clone, Debug)]
pub struct Subset<D> {
    inner: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// A view of `inner` at `indices` (each must be in range).
    pub fn new(inner: D, indices: Vec<usize>) -> Result<Self> {
        let len = inner.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Err(DataError::IndexOutOfRange { index: bad, len });
        }
        Ok(Subset { inner, indices })
    }

    /// The indices into the inner dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The inner dataset.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<D::Item> {
        check_index(index, self.indices.len())?;
        self.inner.get(self.indices[index])
    }
}

/// Several datasets of the same item type, one after another.
#[derive(Clone, Debug)]
pub struct Concat<D> {
    parts: Vec<D>,
    /// `ends[k]` is the total length of parts `0..=k`.
    ends: Vec<usize>,
}

impl<D: Dataset> Concat<D> {
    /// Joins `parts` in order.
    pub fn new(parts: Vec<D>) -> Self {
        let mut total = 0;
        let ends = parts
            .iter()
            .map(|p| {
                total += p.len();
                total
            })
            .collect();
        Concat { parts, ends }
    }
}

impl<D: Dataset> Dataset for Concat<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }
    fn get(&self, index: usize) -> Result<D::Item> {
        check_index(index, self.len())?;
        let part = self.ends.partition_point(|&end| end <= index);
        let start = if part == 0 { 0 } else { self.ends[part - 1] };
        self.parts[part].get(index - start)
    }
}

/// Combinator methods for every dataset.
pub trait DatasetExt: Dataset + Sized {
    /// Applies `f` to each item on `get`.
    fn map<U, F: Fn(Self::Item) -> Result<U> + Send + Sync>(self, f: F) -> Map<Self, F> {
        Map { inner: self, f }
    }

    /// The items at `indices`.
    fn subset(self, indices: Vec<usize>) -> Result<Subset<Self>> {
        Subset::new(self, indices)
    }

    /// This dataset followed by `other`.
    fn concat(self, other: Self) -> Concat<Self> {
        Concat::new(vec![self, other])
    }
}

impl<D: Dataset + Sized> DatasetExt for D {}

/// Splits a shuffled order of `dataset` into consecutive parts of the given lengths.
///
/// The lengths must sum to `dataset.len()`; the order is fixed by `seed`.
/// PyTorch equivalent: `torch.utils.data.random_split(ds, lengths, generator)`.
pub fn random_split<D: Dataset + Clone>(
    dataset: D,
    lengths: &[usize],
    seed: u64,
) -> Result<Vec<Subset<D>>> {
    let total = lengths
        .iter()
        .try_fold(0usize, |acc, &l| acc.checked_add(l))
        .ok_or_else(|| {
            DataError::invalid("random_split", format!("lengths {lengths:?} overflow"))
        })?;
    if total != dataset.len() {
        return Err(DataError::invalid(
            "random_split",
            format!(
                "lengths sum to {total} but the dataset has {}",
                dataset.len()
            ),
        ));
    }
    let order = permutation(total, seed, 0);
    let mut start = 0;
    let mut parts = Vec::with_capacity(lengths.len());
    for &len in lengths {
        let indices = order[start..start + len].to_vec();
        parts.push(Subset {
            inner: dataset.clone(),
            indices,
        });
        start += len;
    }
    Ok(parts)
}

/// Splits `dataset` into (train, validation) with `round(val_fraction * len)` validation examples.
pub fn train_val_split<D: Dataset + Clone>(
    dataset: D,
    val_fraction: f64,
    seed: u64,
) -> Result<(Subset<D>, Subset<D>)> {
    if !(0.0..=1.0).contains(&val_fraction) {
        return Err(DataError::invalid(
            "train_val_split",
            format!("val_fraction {val_fraction} is not in [0, 1]"),
        ));
    }
    let len = dataset.len();
    let val = ((len as f64) * val_fraction).round() as usize;
    let mut parts = random_split(dataset, &[len - val, val], seed)?;
    let val_part = parts.pop().expect("two parts");
    let train_part = parts.pop().expect("two parts");
    Ok((train_part, val_part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: usize) -> VecDataset<usize> {
        VecDataset::new((0..n).collect())
    }

    #[test]
    fn map_subset_concat() {
        let ds = numbers(5).map(|x| Ok(x * 10));
        assert_eq!(ds.len(), 5);
        assert_eq!(ds.get(3).unwrap(), 30);
        let sub = numbers(5).subset(vec![4, 0, 2]).unwrap();
        assert_eq!(sub.len(), 3);
        assert_eq!(sub.get(0).unwrap(), 4);
        assert_eq!(sub.get(2).unwrap(), 2);
        assert!(matches!(
            sub.get(3),
            Err(DataError::IndexOutOfRange { index: 3, len: 3 })
        ));
        assert!(numbers(5).subset(vec![5]).is_err());
        let cat = Concat::new(vec![numbers(2), numbers(0), numbers(3)]);
        let all: Vec<usize> = (0..cat.len()).map(|i| cat.get(i).unwrap()).collect();
        assert_eq!(all, vec![0, 1, 0, 1, 2]);
        assert!(cat.get(5).is_err());
    }

    #[test]
    fn random_split_partitions_and_is_seeded() {
        let ds = Arc::new(numbers(10));
        let parts = random_split(ds.clone(), &[3, 7], 42).unwrap();
        assert_eq!(parts[0].len(), 3);
        assert_eq!(parts[1].len(), 7);
        let mut seen: Vec<usize> = parts
            .iter()
            .flat_map(|p| (0..p.len()).map(|i| p.get(i).unwrap()).collect::<Vec<_>>())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let again = random_split(ds.clone(), &[3, 7], 42).unwrap();
        assert_eq!(parts[0].indices(), again[0].indices());
        let other = random_split(ds.clone(), &[3, 7], 43).unwrap();
        assert_ne!(parts[1].indices(), other[1].indices());
        assert!(random_split(ds, &[3, 6], 1).is_err());
    }

    #[test]
    fn train_val_split_sizes() {
        let (train, val) = train_val_split(Arc::new(numbers(10)), 0.2, 1).unwrap();
        assert_eq!((train.len(), val.len()), (8, 2));
        assert!(train.indices().iter().all(|i| !val.indices().contains(i)));
        assert!(train_val_split(Arc::new(numbers(10)), 1.5, 1).is_err());
    }
}
