//! Property tests: chains of view ops (permute, transpose, narrow, slice, squeeze, unsqueeze,
//! expand, reshape, flatten) against a naive model that copies, plus the stride arithmetic
//! underneath (`StridedOffsets` from any start) and writes through views with `copy_`.

use crate::common;

use common::*;
use proptest::prelude::*;
use sinew_tensor::{DType, Device, Layout, Shape, StridedOffsets, Tensor};

/// A view op with raw parameters, interpreted modulo the current shape when applied.
#[derive(Debug, Clone)]
enum ViewOp {
    Permute(u64),
    Transpose(usize, usize),
    Narrow(usize, usize, usize),
    Slice(usize, usize, usize, usize),
    Unsqueeze(usize),
    Squeeze(usize),
    Expand(usize, usize),
    SplitDim(usize, usize),
    Flatten(usize, usize),
}

fn view_op() -> impl Strategy<Value = ViewOp> {
    let s = 0usize..8;
    prop_oneof![
        any::<u64>().prop_map(ViewOp::Permute),
        (s.clone(), s.clone()).prop_map(|(a, b)| ViewOp::Transpose(a, b)),
        (s.clone(), s.clone(), s.clone()).prop_map(|(a, b, c)| ViewOp::Narrow(a, b, c)),
        (s.clone(), s.clone(), s.clone(), 1usize..4)
            .prop_map(|(a, b, c, d)| ViewOp::Slice(a, b, c, d)),
        s.clone().prop_map(ViewOp::Unsqueeze),
        s.clone().prop_map(ViewOp::Squeeze),
        (s.clone(), 0usize..4).prop_map(|(a, b)| ViewOp::Expand(a, b)),
        (s.clone(), 1usize..4).prop_map(|(a, b)| ViewOp::SplitDim(a, b)),
        (s.clone(), s).prop_map(|(a, b)| ViewOp::Flatten(a, b)),
    ]
}

/// The naive model: a shape and its row-major values (here: positions in the base storage).
#[derive(Debug, Clone)]
struct Model {
    dims: Vec<usize>,
    vals: Vec<f64>,
}

impl Model {
    /// A new model of `dims` whose element at `idx` is the old element at `source(idx)`.
    fn remap(&self, dims: Vec<usize>, source: impl Fn(&[usize]) -> Vec<usize>) -> Model {
        let n = dims.iter().product();
        let vals = (0..n)
            .map(|lin| self.vals[ravel(&source(&unravel(lin, &dims)), &self.dims)])
            .collect();
        Model { dims, vals }
    }
}

/// Applies `op` to the tensor and the model; returns whether the result must share storage.
fn apply(op: &ViewOp, t: &Tensor, m: &Model) -> (Tensor, Model, bool) {
    let r = m.dims.len();
    match *op {
        ViewOp::Permute(seed) if r > 0 => {
            let mut order: Vec<usize> = (0..r).collect();
            let mut s = seed;
            for i in (1..r).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let dims = order.iter().map(|&o| m.dims[o]).collect();
            let model = m.remap(dims, |idx| {
                let mut old = vec![0; r];
                for (i, &o) in order.iter().enumerate() {
                    old[o] = idx[i];
                }
                old
            });
            (t.permute(&order).unwrap(), model, true)
        }
        ViewOp::Transpose(a, b) if r > 0 => {
            let (a, b) = (a % r, b % r);
            let mut dims = m.dims.clone();
            dims.swap(a, b);
            let model = m.remap(dims, |idx| {
                let mut old = idx.to_vec();
                old.swap(a, b);
                old
            });
            // Negative dims count from the end.
            (
                t.transpose(a as isize - r as isize, b as isize).unwrap(),
                model,
                true,
            )
        }
        ViewOp::Narrow(d, start, len) if r > 0 => {
            let d = d % r;
            let start = start % (m.dims[d] + 1);
            let len = len % (m.dims[d] - start + 1);
            let mut dims = m.dims.clone();
            dims[d] = len;
            let model = m.remap(dims, |idx| {
                let mut old = idx.to_vec();
                old[d] += start;
                old
            });
            (t.narrow(d as isize, start, len).unwrap(), model, true)
        }
        ViewOp::Slice(d, start, end, step) if r > 0 => {
            let d = d % r;
            let size = m.dims[d];
            // Python slice semantics: start and end clamp to the size.
            let (s, e) = (start.min(size), end.min(size));
            let len = if e > s { (e - s).div_ceil(step) } else { 0 };
            let mut dims = m.dims.clone();
            dims[d] = len;
            let model = m.remap(dims, |idx| {
                let mut old = idx.to_vec();
                old[d] = s + idx[d] * step;
                old
            });
            (t.slice(d as isize, start, end, step).unwrap(), model, true)
        }
        ViewOp::Unsqueeze(d) => {
            let d = d % (r + 1);
            let mut dims = m.dims.clone();
            dims.insert(d, 1);
            (
                t.unsqueeze(d as isize).unwrap(),
                Model {
                    dims,
                    vals: m.vals.clone(),
                },
                true,
            )
        }
        ViewOp::Squeeze(d) if r > 0 => {
            let d = d % r;
            let mut dims = m.dims.clone();
            if dims[d] == 1 {
                dims.remove(d);
            }
            (
                t.squeeze(d as isize).unwrap(),
                Model {
                    dims,
                    vals: m.vals.clone(),
                },
                true,
            )
        }
        ViewOp::Expand(d, k) if r > 0 && m.dims[d % r] == 1 => {
            let d = d % r;
            let mut dims = m.dims.clone();
            dims[d] = k;
            let model = m.remap(dims.clone(), |idx| {
                let mut old = idx.to_vec();
                old[d] = 0;
                old
            });
            (t.expand(dims).unwrap(), model, true)
        }
        ViewOp::SplitDim(d, f) if r > 0 && m.dims[d % r].is_multiple_of(f) => {
            let d = d % r;
            let mut dims = m.dims.clone();
            let size = dims[d];
            dims[d] = size / f;
            dims.insert(d + 1, f);
            let out = t.reshape(dims.clone()).unwrap();
            // Splitting one dim never needs a copy.
            (
                out,
                Model {
                    dims,
                    vals: m.vals.clone(),
                },
                true,
            )
        }
        ViewOp::Flatten(a, b) if r > 0 => {
            let (a, b) = ((a % r).min(b % r), (a % r).max(b % r));
            let mut dims = m.dims[..a].to_vec();
            dims.push(m.dims[a..=b].iter().product());
            dims.extend_from_slice(&m.dims[b + 1..]);
            let out = t.flatten(a as isize, b as isize).unwrap();
            let shares = out.same_storage(t);
            (
                out,
                Model {
                    dims,
                    vals: m.vals.clone(),
                },
                shares,
            )
        }
        _ => (t.clone(), m.clone(), true),
    }
}

fn start() -> impl Strategy<Value = (Vec<usize>, Vec<ViewOp>)> {
    (shape(4, 4), prop::collection::vec(view_op(), 1..7))
}

fn positions(dims: &[usize]) -> Model {
    let n: usize = dims.iter().product();
    Model {
        dims: dims.to_vec(),
        vals: (0..n).map(|i| i as f64).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn view_chains_match_a_copying_model((dims, ops) in start()) {
        let mut model = positions(&dims);
        let base = Tensor::from_vec(model.vals.clone(), dims.clone()).unwrap();
        let mut t = base.clone();
        for op in &ops {
            let (nt, nm, shares) = apply(op, &t, &model);
            prop_assert_eq!(nt.dims(), &nm.dims[..], "after {:?}", op);
            if shares {
                prop_assert!(nt.same_storage(&t), "{:?} copied", op);
            }
            t = nt;
            model = nm;
        }
        prop_assert_eq!(t.to_vec::<f64>().unwrap(), model.vals.clone());
        // A contiguous copy holds the same values, and reshaping any view to flat agrees.
        let c = t.contiguous().unwrap();
        prop_assert!(c.is_contiguous());
        prop_assert_eq!(c.to_vec::<f64>().unwrap(), model.vals.clone());
        prop_assert_eq!(t.flatten_all().unwrap().to_vec::<f64>().unwrap(), model.vals.clone());
        // `view` succeeds exactly when `reshape` does not copy, and then agrees with it.
        let flat = [t.elem_count()];
        match t.view(flat) {
            Ok(v) => {
                prop_assert!(v.same_storage(&t));
                prop_assert_eq!(v.to_vec::<f64>().unwrap(), model.vals.clone());
            }
            Err(e) => {
                prop_assert!(e.to_string().contains("needs a copy"));
                prop_assert!(!t.reshape(flat).unwrap().same_storage(&base));
            }
        }
        // Every view's storage extent stays inside the base storage.
        if t.same_storage(&base) {
            prop_assert!(t.layout().storage_extent() <= base.elem_count());
        }
    }

    #[test]
    fn strided_offsets_from_any_start_match_the_full_walk((dims, ops) in start(), frac in 0.0f64..1.0) {
        let mut model = positions(&dims);
        let mut t = Tensor::from_vec(model.vals.clone(), dims).unwrap();
        for op in &ops {
            let (nt, nm, shares) = apply(op, &t, &model);
            if !shares {
                // A copy starts a new storage; its offsets no longer name base positions.
                continue;
            }
            t = nt;
            model = nm;
        }
        let layout: &Layout = t.layout();
        let all: Vec<usize> = layout.offsets().collect();
        prop_assert_eq!(all.len(), layout.elem_count());
        // The model's values are base positions, i.e. exactly the storage offsets.
        prop_assert_eq!(all.iter().map(|&o| o as f64).collect::<Vec<_>>(), model.vals.clone());
        let s = (frac * all.len() as f64) as usize;
        let part: Vec<usize> = StridedOffsets::starting_at(layout, s).collect();
        prop_assert_eq!(&part[..], &all[s..]);
        prop_assert_eq!(StridedOffsets::starting_at(layout, s).len(), all.len() - s);
    }

    #[test]
    fn copy_into_a_view_writes_the_right_base_elements((dims, ops) in start(), fill in -100i32..100) {
        let mut model = positions(&dims);
        let base = Tensor::zeros(dims.clone(), DType::F64, &Device::cpu()).unwrap();
        let mut t = base.clone();
        for op in ops.iter().filter(|o| !matches!(o, ViewOp::Expand(..))) {
            let (nt, nm, shares) = apply(op, &t, &model);
            if !shares {
                continue;
            }
            t = nt;
            model = nm;
        }
        let values: Vec<f64> = (0..t.elem_count()).map(|i| fill as f64 + i as f64).collect();
        t.copy_(&Tensor::from_vec(values.clone(), t.dims()).unwrap()).unwrap();
        let mut expect = vec![0.0; base.elem_count()];
        for (pos, v) in model.vals.iter().zip(&values) {
            expect[*pos as usize] = *v;
        }
        prop_assert_eq!(base.to_vec::<f64>().unwrap(), expect);
        prop_assert_eq!(t.to_vec::<f64>().unwrap(), values);
    }

    #[test]
    fn reshape_of_a_layout_keeps_every_offset(dims in shape(4, 4), order_seed in any::<u64>(), split in 1usize..4) {
        // A permuted layout reshaped by `Layout::reshape` (when it can) walks the same offsets.
        let r = dims.len();
        let mut order: Vec<usize> = (0..r).collect();
        let mut s = order_seed;
        for i in (1..r).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let l = Layout::contiguous(dims.clone()).permute(&order).unwrap();
        let n = l.elem_count();
        let targets = [vec![n], vec![1, n, 1], if n.is_multiple_of(split) { vec![split, n / split] } else { vec![n] }];
        for target in targets {
            if let Some(r) = l.reshape(&Shape::new(target.clone())) {
                prop_assert_eq!(r.dims(), &target[..]);
                prop_assert_eq!(r.offsets().collect::<Vec<_>>(), l.offsets().collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn empty_views_reshape_without_copying() {
    // A transposed empty tensor holds no elements, so any same-count shape is a view.
    let e = Tensor::zeros([0, 3], DType::F32, &Device::cpu())
        .unwrap()
        .t()
        .unwrap();
    assert_eq!(e.dims(), &[3, 0]);
    let r = e.view([0, 3]).unwrap();
    assert_eq!(r.dims(), &[0, 3]);
    assert_eq!(e.reshape([5, 0, 2]).unwrap().elem_count(), 0);
    assert_eq!(
        e.contiguous().unwrap().to_vec::<f32>().unwrap(),
        Vec::<f32>::new()
    );
}

#[test]
fn a_minus_one_size_is_inferred_as_in_pytorch() {
    let values: Vec<f32> = (0..24).map(|v| v as f32).collect();
    let t = f32s(&values, &[2, 3, 4]);
    // torch.arange(24.).reshape(2, 3, 4).view(-1, 6).shape == (4, 6), same order
    let v = t.view([-1, 6]).unwrap();
    assert_eq!(v.dims(), &[4, 6]);
    assert!(v.same_storage(&t));
    assert_eq!(v.to_vec::<f32>().unwrap(), values);
    assert_eq!(t.reshape([2, -1, 2]).unwrap().dims(), &[2, 6, 2]);
    assert_eq!(t.reshape(vec![-1i64]).unwrap().dims(), &[24]);
    // A transposed tensor: view(-1) needs a copy (PyTorch raises), reshape(-1) copies in the
    // transposed order: torch.arange(24.).reshape(2, 3, 4).transpose(0, 2).reshape(-1)[:4]
    // == [0, 12, 4, 16].
    let tt = t.transpose(0, 2).unwrap();
    assert!(
        tt.view([-1])
            .unwrap_err()
            .to_string()
            .contains("needs a copy")
    );
    let flat = tt.reshape([-1]).unwrap();
    assert_eq!(flat.to_vec::<f32>().unwrap()[..4], [0.0, 12.0, 4.0, 16.0]);
    // torch: "shape '[-1, 5]' is invalid for input of size 24", "only one dimension can be inferred"
    assert!(t.reshape([-1, 5]).is_err());
    assert!(t.view([-1, -1]).is_err());
}

#[test]
fn the_gradient_of_a_minus_one_reshape_has_the_input_shape() {
    let x = Tensor::ones([2, 3, 4], DType::F32, &Device::cpu())
        .unwrap()
        .requires_grad_();
    let scale = f32s(&(0..12).map(|v| v as f32).collect::<Vec<_>>(), &[1, 12]);
    let y = x.reshape([-1, 12]).unwrap().mul(&scale).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    let g = x.grad().unwrap();
    assert_eq!(g.dims(), &[2, 3, 4]);
    let expected: Vec<f32> = (0..24).map(|i| (i % 12) as f32).collect();
    assert_eq!(g.to_vec::<f32>().unwrap(), expected);
}
