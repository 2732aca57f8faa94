//! Property tests of the indexing family against naive loops: index_select, gather, scatter and
//! scatter_add (with duplicates), cat/split round trips and constant/reflect padding, on
//! awkward layouts.

use crate::common;

use common::*;
use proptest::prelude::*;
use sinew_tensor::{DType, PadMode, Tensor};

/// A non-empty shape of rank 1..=3, values, a dim and a seed for indices.
fn case() -> impl Strategy<Value = (Vec<usize>, Vec<f64>, usize, u64)> {
    prop::collection::vec(1usize..5, 1..=3).prop_flat_map(|dims| {
        let n = dims.iter().product();
        let r = dims.len();
        (Just(dims), exact_values(n), 0..r, any::<u64>())
    })
}

fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn index_select_matches_a_loop((dims, vals, d, seed) in case(), k in 0usize..6, kind in layout_kind()) {
        let mut next = lcg(seed);
        let ids: Vec<i64> = (0..k).map(|_| (next() % dims[d] as u64) as i64).collect();
        let t = with_layout(&vals, &dims, DType::F32, kind);
        let out = t.index_select(d as isize, &i64s(&ids, &[k])).unwrap();
        let mut od = dims.clone();
        od[d] = k;
        let expect: Vec<f64> = (0..od.iter().product()).map(|lin| {
            let mut idx = unravel(lin, &od);
            idx[d] = ids[idx[d]] as usize;
            vals[ravel(&idx, &dims)]
        }).collect();
        assert_tensor(&out, &od, &expect, 0.0, 0.0);
    }

    #[test]
    fn gather_and_scatter_match_loops((dims, vals, d, seed) in case(), kind in layout_kind(), ikind in layout_kind()) {
        let mut next = lcg(seed);
        // The index may be smaller than the source outside `dim` and of any size along it.
        let idims: Vec<usize> = dims.iter().enumerate().map(|(i, &s)| if i == d { 1 + (next() % 4) as usize } else { 1 + (next() % s as u64) as usize }).collect();
        let ni: usize = idims.iter().product();
        let ids: Vec<f64> = (0..ni).map(|_| (next() % dims[d] as u64) as f64).collect();
        let index = with_layout(&ids, &idims, DType::I64, ikind);
        let src = with_layout(&vals, &dims, DType::F64, kind);
        // gather: out[p] = src[p with dim d replaced by index[p]]
        let expect: Vec<f64> = (0..ni).map(|lin| {
            let mut idx = unravel(lin, &idims);
            idx[d] = ids[lin] as usize;
            vals[ravel(&idx, &dims)]
        }).collect();
        assert_tensor(&src.gather(d as isize, &index).unwrap(), &idims, &expect, 0.0, 0.0);
        // scatter_add: every value lands, duplicates sum; scatter: the last write wins.
        let values: Vec<f64> = (0..ni).map(|i| i as f64 + 1.0).collect();
        let vt = with_layout(&values, &idims, DType::F64, kind);
        let (mut added, mut replaced) = (vals.clone(), vals.clone());
        for lin in 0..ni {
            let mut idx = unravel(lin, &idims);
            idx[d] = ids[lin] as usize;
            let at = ravel(&idx, &dims);
            added[at] += values[lin];
            replaced[at] = values[lin];
        }
        assert_tensor(&src.scatter_add(d as isize, &index, &vt).unwrap(), &dims, &added, 0.0, 0.0);
        assert_tensor(&src.scatter(d as isize, &index, &vt).unwrap(), &dims, &replaced, 0.0, 0.0);
        // The source is untouched (scatter returns a copy).
        assert_tensor(&src, &dims, &vals, 0.0, 0.0);
    }

    #[test]
    fn split_then_cat_is_the_identity((dims, vals, d, seed) in case(), kind in layout_kind(), size in 1usize..4) {
        let t = with_layout(&vals, &dims, DType::BF16, kind);
        let pieces = t.split(size, d as isize).unwrap();
        prop_assert_eq!(pieces.len(), dims[d].div_ceil(size));
        prop_assert!(pieces.iter().all(|p| p.same_storage(&t)));
        let back = Tensor::cat(&pieces, d as isize).unwrap();
        assert_tensor(&back, &dims, &vals, 0.0, 0.0);
        let chunks = t.chunk(1 + (seed % 4) as usize, d as isize - dims.len() as isize).unwrap();
        assert_tensor(&Tensor::cat(&chunks, d as isize).unwrap(), &dims, &vals, 0.0, 0.0);
        // stack = unsqueeze + cat
        let s = Tensor::stack(&[t.clone(), t.clone()], d as isize).unwrap();
        prop_assert_eq!(s.narrow(d as isize, 1, 1).unwrap().squeeze(d as isize).unwrap().to_vec_f64().unwrap(), vals.clone());
    }

    #[test]
    fn padding_matches_a_loop((dims, vals, _d, seed) in case(), kind in layout_kind(), reflect in any::<bool>()) {
        let mut next = lcg(seed);
        let r = dims.len();
        let k = 1 + (next() % r as u64) as usize;
        let pads: Vec<(usize, usize)> = dims[r - k..].iter().map(|&s| {
            let bound = if reflect { s as u64 } else { 3 };
            ((next() % bound) as usize, (next() % bound) as usize)
        }).collect();
        let t = with_layout(&vals, &dims, DType::F32, kind);
        let mode = if reflect { PadMode::Reflect } else { PadMode::Constant(-9.0) };
        let out = t.pad(&pads, mode).unwrap();
        let mut od = dims.clone();
        for (i, &(b, a)) in pads.iter().enumerate() {
            od[r - k + i] += b + a;
        }
        let expect: Vec<f64> = (0..od.iter().product()).map(|lin| {
            let mut idx = unravel(lin, &od);
            for (i, &(b, _)) in pads.iter().enumerate() {
                let dim = r - k + i;
                let (pos, size) = (idx[dim] as isize - b as isize, dims[dim] as isize);
                if pos < 0 || pos >= size {
                    if !reflect {
                        return -9.0;
                    }
                    // Mirror without repeating the edge: -1 -> 1, size -> size - 2.
                    idx[dim] = if pos < 0 { (-pos) as usize } else { (2 * (size - 1) - pos) as usize };
                } else {
                    idx[dim] = pos as usize;
                }
            }
            vals[ravel(&idx, &dims)]
        }).collect();
        assert_tensor(&out, &od, &expect, 0.0, 0.0);
    }
}
