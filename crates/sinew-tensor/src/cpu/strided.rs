//! Walking strided views: the plumbing every elementwise CPU kernel shares.
//!
//! A view is first simplified: size-1 dims are dropped and neighbouring dims that are laid out
//! back to back in every operand are merged. The result is walked row by row: one storage offset
//! per operand and row (from [`StridedOffsets`] over the outer dims), then a tight loop over the
//! innermost dim with a fixed stride per operand. Contiguous rows, broadcast rows (stride 0) and
//! scalars get dedicated loops the compiler vectorises; rows run in parallel above
//! [`PARALLEL_THRESHOLD`] elements.

use std::mem::MaybeUninit;

use super::alloc::try_with_capacity;
use super::{PARALLEL_THRESHOLD, par};
use crate::{Layout, Result, Shape, StridedOffsets};

/// Elements per parallel work item (whole rows are grouped up to about this many).
const CHUNK: usize = 1 << 13;

/// A fallibly allocated vector of `n` elements written by `fill`, which gets them
/// uninitialised and must write every one (the kernels' outputs are not zero-filled first: a
/// pooled buffer would be written twice).
fn filled<U: 'static>(
    op: &'static str,
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<U>]),
) -> Result<Vec<U>> {
    let mut out = try_with_capacity::<U>(op, n)?;
    fill(&mut out.spare_capacity_mut()[..n]);
    // SAFETY: capacity >= n (`try_with_capacity`, and the slice above checks it); every caller
    // passes a `fill` that writes all `n` elements (`for_rows` and `par::for_each_chunk_mut`
    // hand each element to exactly one row or chunk, and each row or chunk loop below writes
    // its whole slice); a panic in `fill` leaves the length 0, exposing nothing.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// Dims and per-operand strides of a view after dropping size-1 dims and merging dims that
/// are adjacent in memory for every operand. Never empty: a single element becomes `[1]`.
struct Simplified<const K: usize> {
    dims: Vec<usize>,
    strides: [Vec<usize>; K],
}

fn simplify<const K: usize>(dims: &[usize], strides: [&[usize]; K]) -> Simplified<K> {
    let mut out_dims: Vec<usize> = Vec::with_capacity(dims.len());
    let mut out_strides: [Vec<usize>; K] = std::array::from_fn(|_| Vec::with_capacity(dims.len()));
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let merges = out_dims.last().is_some()
            && (0..K).all(|k| *out_strides[k].last().unwrap_or(&0) == strides[k][i] * d);
        if merges {
            *out_dims.last_mut().expect("checked") *= d;
            for k in 0..K {
                *out_strides[k].last_mut().expect("checked") = strides[k][i];
            }
        } else {
            out_dims.push(d);
            for k in 0..K {
                out_strides[k].push(strides[k][i]);
            }
        }
    }
    if out_dims.is_empty() {
        out_dims.push(1);
        for s in &mut out_strides {
            s.push(0);
        }
    }
    Simplified {
        dims: out_dims,
        strides: out_strides,
    }
}

/// The row walk of [`for_rows`], independent of the element type and the row closure: the
/// innermost dim's length and strides, and the outer dims as one layout per operand.
struct RowPlan<const K: usize> {
    inner: usize,
    inner_strides: [usize; K],
    outer: [Layout; K],
}

impl<const K: usize> RowPlan<K> {
    fn new(dims: &[usize], layouts: [&Layout; K]) -> Self {
        let mut strides: [&[usize]; K] = [&[]; K];
        for (s, l) in strides.iter_mut().zip(layouts) {
            *s = l.strides();
        }
        let s: Simplified<K> = simplify(dims, strides);
        let rank = s.dims.len();
        let mut inner_strides = [0; K];
        for (i, st) in inner_strides.iter_mut().zip(&s.strides) {
            *i = st[rank - 1];
        }
        let outer = std::array::from_fn(|k| {
            Layout::from_parts(
                Shape::new(s.dims[..rank - 1].to_vec()),
                s.strides[k][..rank - 1].to_vec(),
                layouts[k].offset(),
            )
        });
        RowPlan {
            inner: s.dims[rank - 1],
            inner_strides,
            outer,
        }
    }

    /// Each operand's offset iterator from row `row` on.
    fn starts(&self, row: usize) -> [StridedOffsets<'_>; K] {
        std::array::from_fn(|k| StridedOffsets::starting_at(&self.outer[k], row))
    }
}

/// Fills `out` (row-major over `dims`) row by row. For each row, `row` gets the output row, the
/// storage offset of the row's first element in each operand, and each operand's inner stride.
fn for_rows<U, const K: usize>(
    out: &mut [U],
    dims: &[usize],
    layouts: [&Layout; K],
    row: impl Fn(&mut [U], [usize; K], [usize; K]) + Sync,
) where
    U: Send,
{
    let n = out.len();
    if n == 0 {
        return;
    }
    let plan = RowPlan::new(dims, layouts);
    let inner = plan.inner;
    let rows_per_task = (CHUNK / inner).max(1);
    let task = |t: usize, chunk: &mut [U]| {
        let mut starts = plan.starts(t * rows_per_task);
        for out_row in chunk.chunks_mut(inner) {
            let mut offsets = [0; K];
            for (o, s) in offsets.iter_mut().zip(&mut starts) {
                *o = s.next().expect("one offset per row");
            }
            row(out_row, offsets, plan.inner_strides);
        }
    };
    par::for_each_chunk_mut(out, rows_per_task * inner, n >= PARALLEL_THRESHOLD, &task);
}

/// Maps a slice in parallel above the threshold into a fallibly allocated vector.
pub(crate) fn map_slice<T: Copy + Sync, U: Copy + Default + Send + Sync + 'static>(
    op: &'static str,
    src: &[T],
    f: impl Fn(T) -> U + Sync + Send,
) -> Result<Vec<U>> {
    filled(op, src.len(), |out| {
        let task = |t: usize, chunk: &mut [MaybeUninit<U>]| {
            for (o, &x) in chunk.iter_mut().zip(&src[t * CHUNK..]) {
                o.write(f(x));
            }
        };
        par::for_each_chunk_mut(out, CHUNK, src.len() >= PARALLEL_THRESHOLD, &task);
    })
}

/// Copies the elements of a view into a new row-major vector, applying `f` to each; the
/// output is allocated fallibly (an out-of-memory error names `op`).
pub(crate) fn map_view<T, U, F>(
    op: &'static str,
    data: &[T],
    layout: &Layout,
    f: F,
) -> Result<Vec<U>>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + Default + 'static,
    F: Fn(T) -> U + Sync + Send,
{
    let n = layout.elem_count();
    if n == 0 {
        return Ok(Vec::new());
    }
    if let Some((start, end)) = layout.contiguous_offset() {
        return map_slice(op, &data[start..end], f);
    }
    filled(op, n, |out| {
        for_rows(out, layout.dims(), [layout], |row, [p], [s]| {
            if s == 1 {
                let len = row.len();
                for (o, &x) in row.iter_mut().zip(&data[p..p + len]) {
                    o.write(f(x));
                }
            } else if s == 0 {
                let v = f(data[p]);
                for o in row {
                    o.write(v);
                }
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    o.write(f(data[p + j * s]));
                }
            }
        })
    })
}

/// True when every stride is 0: the view reads one element (a scalar or an expanded scalar).
fn reads_one_element(layout: &Layout) -> bool {
    layout.strides().iter().all(|&s| s == 0)
}

/// Combines two same-shape views elementwise into a new, fallibly allocated row-major vector.
pub(crate) fn zip_views<A, B, U, F>(
    op: &'static str,
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    f: F,
) -> Result<Vec<U>>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync + Default + 'static,
    F: Fn(A, B) -> U + Sync + Send,
{
    let n = la.elem_count();
    if n == 0 {
        return Ok(Vec::new());
    }
    match (la.contiguous_offset(), lb.contiguous_offset()) {
        (Some((sa, ea)), Some((sb, eb))) => {
            let (a, b) = (&a[sa..ea], &b[sb..eb]);
            return filled(op, n, |out| {
                let task = |t: usize, chunk: &mut [MaybeUninit<U>]| {
                    let (a, b) = (&a[t * CHUNK..], &b[t * CHUNK..]);
                    for (o, (&x, &y)) in chunk.iter_mut().zip(a.iter().zip(b)) {
                        o.write(f(x, y));
                    }
                };
                par::for_each_chunk_mut(out, CHUNK, n >= PARALLEL_THRESHOLD, &task);
            });
        }
        (Some((sa, ea)), None) if reads_one_element(lb) => {
            let y = b[lb.offset()];
            return map_slice(op, &a[sa..ea], |x| f(x, y));
        }
        (None, Some((sb, eb))) if reads_one_element(la) => {
            let x = a[la.offset()];
            return map_slice(op, &b[sb..eb], |y| f(x, y));
        }
        _ => {}
    }
    filled(op, n, |out| {
        for_rows(out, la.dims(), [la, lb], |row, [pa, pb], [sa, sb]| {
            let len = row.len();
            match (sa, sb) {
                (1, 1) => {
                    let rows = a[pa..pa + len].iter().zip(&b[pb..pb + len]);
                    for (o, (&x, &y)) in row.iter_mut().zip(rows) {
                        o.write(f(x, y));
                    }
                }
                (1, 0) => {
                    let y = b[pb];
                    for (o, &x) in row.iter_mut().zip(&a[pa..pa + len]) {
                        o.write(f(x, y));
                    }
                }
                (0, 1) => {
                    let x = a[pa];
                    for (o, &y) in row.iter_mut().zip(&b[pb..pb + len]) {
                        o.write(f(x, y));
                    }
                }
                _ => {
                    for (j, o) in row.iter_mut().enumerate() {
                        o.write(f(a[pa + j * sa], b[pb + j * sb]));
                    }
                }
            }
        })
    })
}

/// `cond ? on_true : on_false` over three same-shape views, in row-major order.
pub(crate) fn select_views<T>(
    op: &'static str,
    cond: &[bool],
    lc: &Layout,
    t: &[T],
    lt: &Layout,
    f: &[T],
    lf: &Layout,
) -> Result<Vec<T>>
where
    T: Copy + Send + Sync + Default + 'static,
{
    let n = lc.elem_count();
    if n == 0 {
        return Ok(Vec::new());
    }
    filled(op, n, |out| {
        for_rows(
            out,
            lc.dims(),
            [lc, lt, lf],
            |row, [pc, pt, pf], [sc, st, sf]| {
                if (sc, st, sf) == (1, 1, 1) {
                    let len = row.len();
                    let rows = cond[pc..pc + len]
                        .iter()
                        .zip(&t[pt..pt + len])
                        .zip(&f[pf..pf + len]);
                    for (o, ((&c, &x), &y)) in row.iter_mut().zip(rows) {
                        o.write(if c { x } else { y });
                    }
                } else {
                    for (j, o) in row.iter_mut().enumerate() {
                        o.write(if cond[pc + j * sc] {
                            t[pt + j * st]
                        } else {
                            f[pf + j * sf]
                        });
                    }
                }
            },
        )
    })
}

/// A contiguous copy of a view (or a borrow when it already is contiguous); the copy is
/// allocated fallibly (a huge broadcast view is an out-of-memory error naming `op`).
pub(crate) fn contiguous_slice<'a, T: Copy + Send + Sync + Default + 'static>(
    op: &'static str,
    data: &'a [T],
    layout: &Layout,
) -> Result<std::borrow::Cow<'a, [T]>> {
    Ok(match layout.contiguous_offset() {
        Some((s, e)) => std::borrow::Cow::Borrowed(&data[s..e]),
        None => std::borrow::Cow::Owned(map_view(op, data, layout, |x| x)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_merges_dims_adjacent_in_every_operand() {
        // [2, 3, 4] contiguous against a [2, 3, 4] view broadcast from [4]: the first two dims merge
        // (stride 0 in the broadcast operand), the last stays separate.
        let s = simplify(&[2, 3, 4], [&[12, 4, 1], &[0, 0, 1]]);
        assert_eq!(s.dims, vec![6, 4]);
        assert_eq!(s.strides, [vec![4, 1], vec![0, 1]]);
        // Size-1 dims vanish; a single element becomes one dim of size 1.
        let s = simplify(&[1, 1], [&[5, 7]]);
        assert_eq!(s.dims, vec![1]);
        // A transposed operand blocks merging.
        let s = simplify(&[3, 2], [&[2, 1], &[1, 3]]);
        assert_eq!(s.dims, vec![3, 2]);
    }

    #[test]
    fn select_views_picks_per_element() {
        let cond = [true, false, false, true];
        let l = Layout::contiguous([2, 2]);
        let t = [1, 2, 3, 4];
        // on_false broadcast from a [2, 1] column.
        let f = [-1, -2];
        let lf = Layout::contiguous([2, 1])
            .broadcast_to(&Shape::new([2, 2]))
            .unwrap();
        assert_eq!(
            select_views("where", &cond, &l, &t, &l, &f, &lf).unwrap(),
            vec![1, -1, -2, 4]
        );
    }
}
