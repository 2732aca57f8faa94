//! The kernels' one door to rayon: work items handed over as `&dyn Fn`, so the parallel
//! iterator machinery is compiled once per element type instead of once per kernel closure.
//!
//! A kernel keeps its inner loop generic (monomorphised and vectorised per operation) and only
//! the split into work items goes through here; a dynamic call per work item (thousands of
//! elements) costs nothing measurable, while each `par_chunks_mut(..).for_each(closure)` with a
//! distinct closure type used to add its own copy of rayon's job, join and bridge code (half of
//! this crate's LLVM IR, and most of its build time).

use rayon::prelude::*;

/// Runs `task(t)` for every `t` in `0..tasks`, over rayon's threads when `parallel` (else in
/// order on the calling thread).
pub(crate) fn for_each_index(tasks: usize, parallel: bool, task: &(dyn Fn(usize) + Sync)) {
    if parallel && tasks > 1 {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// Splits `out` into chunks of `chunk` elements (the last may be shorter) and runs
/// `task(index, chunk)` on each, over rayon's threads when `parallel`.
pub(crate) fn for_each_chunk_mut<U: Send>(
    out: &mut [U],
    chunk: usize,
    parallel: bool,
    task: &(dyn Fn(usize, &mut [U]) + Sync),
) {
    let chunk = chunk.max(1);
    if parallel && out.len() > chunk {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, c)| task(t, c));
    } else {
        for (t, c) in out.chunks_mut(chunk).enumerate() {
            task(t, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_index_runs_once_in_both_modes() {
        for parallel in [false, true] {
            let hits: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            for_each_index(37, parallel, &|t| {
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn chunks_cover_the_slice_with_their_indices() {
        for parallel in [false, true] {
            let mut out = vec![0usize; 1003];
            for_each_chunk_mut(&mut out, 100, parallel, &|t, c| {
                for (j, x) in c.iter_mut().enumerate() {
                    *x = t * 100 + j;
                }
            });
            assert_eq!(out, (0..1003).collect::<Vec<_>>());
        }
    }
}
