//! Analytic gradients against PyTorch: every differentiable op of the op table, on fixed f64
//! inputs, checked against the forward output and input gradients PyTorch computes for
//! `(out * w).sum()`. The reference values are in `pytorch/cases.rs`, written by
//! `pytorch/generate.py` (which holds the PyTorch side of each case); this file holds the Sinew
//! side, keyed by case name. No Python is needed to run it.
//!
//! Where Sinew's spelling differs from PyTorch's on purpose, the case follows Sinew and the
//! generator says so (pad order, amax/amin, vector_norm, heaviside, rsub/rdiv scalars, and the
//! gradient of clamp at its bounds).

#[rustfmt::skip]
#[allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]
#[path = "../pytorch/cases.rs"]
mod cases;

use cases::{CASES, Case};

use sinew_tensor::op_table::OP_TABLE;
use sinew_tensor::{
    Activation, Conv1dConfig, Conv2dConfig, DType, MatmulOptions, PadMode, Pool2dConfig, Result,
    Shape, Tensor,
};

/// Relative tolerance of every comparison (plus [`ATOL`] for values near zero).
const RTOL: f64 = 1e-10;
/// Absolute slack for values that are (nearly) zero.
const ATOL: f64 = 1e-12;

/// The non-float arguments of a case, as tensors.
struct Args {
    ints: Vec<Tensor>,
    masks: Vec<Tensor>,
}

/// An op's output, and the indices it returns alongside (pooling, `max_dim`).
type Out = (Tensor, Option<Tensor>);
/// The Sinew side of a case: inputs (leaves, in the fixture's order) and arguments to output.
type Run = fn(&[Tensor], &Args) -> Result<Out>;

fn one(v: Result<Tensor>) -> Result<Out> {
    Ok((v?, None))
}

fn with_indices(r: Result<(Tensor, Tensor)>) -> Result<Out> {
    let (v, i) = r?;
    Ok((v, Some(i)))
}

/// Pieces scaled by 1, 2, 3, ... and joined again (the generator's `rejoin`).
fn rejoin(pieces: Vec<Tensor>, dim: isize) -> Result<Tensor> {
    let scaled = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| p.mul_scalar(i as f64 + 1.0))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&scaled, dim)
}

/// The `Unfold2d` spec of an `[n, c, h, w]` image (the fold output shape for `fold2d`).
fn spec(
    image: &[usize],
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
) -> Result<sinew_tensor::Unfold2d> {
    Tensor::zeros(image, DType::F64, &sinew_tensor::Device::cpu())?
        .unfold_spec("unfold2d", kernel, stride, padding, dilation, 0.0)
}

fn pool(
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    count_include_pad: bool,
) -> Pool2dConfig {
    Pool2dConfig {
        kernel,
        stride: Some(stride),
        padding,
        dilation,
        count_include_pad,
    }
}

/// The Sinew call of every case, with the parameters of the PyTorch call in `generate.py`.
const RUNNERS: &[(&str, Run)] = &[
    // Unary.
    ("neg", |x, _| one(x[0].neg())),
    ("abs", |x, _| one(x[0].abs())),
    ("abs/at_zero", |x, _| one(x[0].abs())),
    ("exp", |x, _| one(x[0].exp())),
    ("exp/transposed", |x, _| one(x[0].t()?.exp())),
    ("log", |x, _| one(x[0].log())),
    ("log1p", |x, _| one(x[0].log1p())),
    ("sqrt", |x, _| one(x[0].sqrt())),
    ("rsqrt", |x, _| one(x[0].rsqrt())),
    ("sin", |x, _| one(x[0].sin())),
    ("cos", |x, _| one(x[0].cos())),
    ("tanh", |x, _| one(x[0].tanh())),
    ("sigmoid", |x, _| one(x[0].sigmoid())),
    ("relu", |x, _| one(x[0].relu())),
    ("relu/at_zero", |x, _| one(x[0].relu())),
    ("leaky_relu", |x, _| one(x[0].leaky_relu(0.1))),
    ("leaky_relu/at_zero", |x, _| one(x[0].leaky_relu(0.1))),
    ("elu", |x, _| one(x[0].elu(1.3))),
    ("elu/at_zero", |x, _| one(x[0].elu(1.3))),
    ("gelu", |x, _| one(x[0].gelu())),
    ("erf", |x, _| one(x[0].erf())),
    ("softplus", |x, _| one(x[0].softplus(1.5, 2.0))),
    ("softplus/defaults", |x, _| one(x[0].softplus(1.0, 20.0))),
    ("step", |x, _| one(x[0].step(0.5))),
    ("sign", |x, _| one(x[0].sign())),
    ("clamp", |x, _| one(x[0].clamp(-0.5, 0.7))),
    ("clamp/at_bounds", |x, _| one(x[0].clamp(-0.5, 0.7))),
    ("powf", |x, _| one(x[0].powf(2.5))),
    ("powf/cube", |x, _| one(x[0].powf(3.0))),
    ("powf/negative", |x, _| one(x[0].powf(-1.5))),
    ("recip", |x, _| one(x[0].recip())),
    ("square", |x, _| one(x[0].square())),
    ("add_scalar", |x, _| one(x[0].add_scalar(0.7))),
    ("mul_scalar", |x, _| one(x[0].mul_scalar(-1.3))),
    ("div_scalar", |x, _| one(x[0].div_scalar(2.5))),
    ("rsub_scalar", |x, _| one(x[0].rsub_scalar(1.5))),
    ("rdiv_scalar", |x, _| one(x[0].rdiv_scalar(2.0))),
    // Binary.
    ("add", |x, _| one(x[0].add(&x[1]))),
    ("add/scalar_rhs", |x, _| one(x[0].add(&x[1]))),
    ("sub", |x, _| one(x[0].sub(&x[1]))),
    ("mul", |x, _| one(x[0].mul(&x[1]))),
    ("mul/transposed", |x, _| one(x[0].t()?.mul(&x[1]))),
    ("div", |x, _| one(x[0].div(&x[1]))),
    ("pow", |x, _| one(x[0].pow(&x[1]))),
    ("pow/broadcast", |x, _| one(x[0].pow(&x[1]))),
    ("maximum", |x, _| one(x[0].maximum(&x[1]))),
    ("minimum", |x, _| one(x[0].minimum(&x[1]))),
    ("maximum/ties", |x, _| one(x[0].maximum(&x[1]))),
    ("minimum/ties", |x, _| one(x[0].minimum(&x[1]))),
    ("add_relu", |x, _| one(x[0].add_relu(&x[1]))),
    // Select.
    ("where_cond", |x, a| {
        one((a.masks[0]).where_cond(&x[0], &x[1]))
    }),
    (
        "masked_fill",
        |x, a| one(x[0].masked_fill(&a.masks[0], 1.5)),
    ),
    ("masked_fill/broadcast_mask", |x, a| {
        one(x[0].masked_fill(&a.masks[0], -2.0))
    }),
    // Reductions.
    ("sum", |x, _| one(x[0].sum(&[0, 2], false))),
    ("sum/all", |x, _| one(x[0].sum(&[], false))),
    ("sum/keepdim", |x, _| one(x[0].sum(&[-2], true))),
    ("mean", |x, _| one(x[0].mean(&[1], true))),
    ("mean/all", |x, _| one(x[0].mean(&[], false))),
    ("prod", |x, _| one(x[0].prod(&[2], false))),
    ("prod/negative", |x, _| one(x[0].prod(&[0], true))),
    ("prod/zeros", |x, _| one(x[0].prod(&[1], false))),
    ("max", |x, _| one(x[0].max(&[0, 2], false))),
    ("max/keepdim", |x, _| one(x[0].max(&[1], true))),
    ("max/all", |x, _| one(x[0].max(&[], false))),
    ("max/ties", |x, _| one(x[0].max(&[1], false))),
    ("min", |x, _| one(x[0].min(&[1], false))),
    ("min/ties", |x, _| one(x[0].min(&[0], true))),
    ("max/max_dim", |x, _| with_indices(x[0].max_dim(1, false))),
    ("min/min_dim", |x, _| with_indices(x[0].min_dim(0, true))),
    ("var", |x, _| one(x[0].var(&[1], 1, false))),
    ("var/all", |x, _| one(x[0].var(&[], 0, true))),
    ("std", |x, _| one(x[0].std(&[0, 2], 0, true))),
    ("std/unbiased", |x, _| one(x[0].std(&[-1], 1, false))),
    ("logsumexp", |x, _| one(x[0].logsumexp(&[1], false))),
    ("logsumexp/keepdim", |x, _| {
        one(x[0].logsumexp(&[0, 2], true))
    }),
    ("logsumexp/large", |x, _| one(x[0].logsumexp(&[-1], false))),
    ("norm", |x, _| one(x[0].norm(3.0, &[1], false))),
    ("norm/l2_all", |x, _| one(x[0].norm(2.0, &[], false))),
    ("norm/l1", |x, _| one(x[0].norm(1.0, &[0], true))),
    ("norm/inf", |x, _| {
        one(x[0].norm(f64::INFINITY, &[-1], false))
    }),
    ("norm/half", |x, _| one(x[0].norm(0.5, &[0, 2], false))),
    ("norm/zero_row", |x, _| one(x[0].norm(2.0, &[1], false))),
    ("norm/p3_zero_row", |x, _| one(x[0].norm(3.0, &[1], false))),
    ("std/constant_row", |x, _| one(x[0].std(&[1], 0, false))),
    ("norm/half_zeros", |x, _| one(x[0].norm(0.5, &[1], false))),
    // Softmax.
    ("softmax", |x, _| one(x[0].softmax(1))),
    ("softmax/last", |x, _| one(x[0].softmax(-1))),
    ("log_softmax", |x, _| one(x[0].log_softmax(0))),
    ("log_softmax/last", |x, _| one(x[0].log_softmax(-1))),
    // Matmul.
    ("matmul", |x, _| one(x[0].matmul(&x[1]))),
    ("matmul/batch_broadcast", |x, _| one(x[0].matmul(&x[1]))),
    ("matmul/vec_lhs", |x, _| one(x[0].matmul(&x[1]))),
    ("matmul/vec_rhs", |x, _| one(x[0].matmul(&x[1]))),
    ("matmul/dot", |x, _| one(x[0].matmul(&x[1]))),
    ("matmul/transposed", |x, _| {
        one(x[0].transpose(-2, -1)?.matmul(&x[1]))
    }),
    // Matmul with an epilogue (addmm, linear).
    ("matmul_with", |x, _| {
        one(x[0].matmul_with(&x[1], MatmulOptions::new().with_bias(&x[2])))
    }),
    ("matmul_with/relu", |x, _| {
        let opts = MatmulOptions::new()
            .with_bias(&x[2])
            .with_activation(Activation::Relu);
        one(x[0].matmul_with(&x[1], opts))
    }),
    ("matmul_with/linear", |x, _| {
        one(x[0].matmul_with(&x[1].t()?, MatmulOptions::new().with_bias(&x[2])))
    }),
    // Views.
    ("reshape", |x, _| one(x[0].reshape([4, 6]))),
    ("reshape/transposed", |x, _| one(x[0].t()?.reshape([12]))),
    ("permute", |x, _| one(x[0].permute(&[2, 0, 1]))),
    ("transpose", |x, _| one(x[0].transpose(0, 2))),
    ("transpose/negative", |x, _| one(x[0].transpose(-1, -2))),
    ("narrow", |x, _| one(x[0].narrow(1, 1, 2))),
    ("slice", |x, _| one(x[0].slice(-1, 1, 4, 2))),
    ("slice/dim0", |x, _| one(x[0].slice(0, 0, 3, 2))),
    ("squeeze", |x, _| one(x[0].squeeze(1))),
    ("unsqueeze", |x, _| one(x[0].unsqueeze(-1))),
    ("unsqueeze/front", |x, _| one(x[0].unsqueeze(0))),
    ("broadcast_to", |x, _| one(x[0].broadcast_to([2, 3, 4]))),
    ("flatten", |x, _| one(x[0].flatten(1, 2))),
    ("flatten/all", |x, _| one(x[0].flatten(0, -1))),
    ("contiguous", |x, _| one(x[0].t()?.contiguous())),
    // Joining, splitting, indexing.
    ("cat", |x, _| one(Tensor::cat(x, 1))),
    ("cat/last", |x, _| one(Tensor::cat(x, -1))),
    ("stack", |x, _| one(Tensor::stack(x, 1))),
    ("stack/front", |x, _| one(Tensor::stack(x, 0))),
    ("split", |x, _| one(rejoin(x[0].split(2, 0)?, 0))),
    ("split/last", |x, _| one(rejoin(x[0].split(3, -1)?, -1))),
    ("chunk", |x, _| one(rejoin(x[0].chunk(2, -1)?, -1))),
    ("chunk/uneven", |x, _| one(rejoin(x[0].chunk(3, 0)?, 0))),
    ("index_select", |x, a| one(x[0].index_select(1, &a.ints[0]))),
    ("index_select/dim0", |x, a| {
        one(x[0].index_select(0, &a.ints[0]))
    }),
    ("gather", |x, a| one(x[0].gather(1, &a.ints[0]))),
    ("gather/dim0", |x, a| one(x[0].gather(0, &a.ints[0]))),
    ("scatter", |x, a| one(x[0].scatter(1, &a.ints[0], &x[1]))),
    ("scatter/dim0", |x, a| {
        one(x[0].scatter(0, &a.ints[0], &x[1]))
    }),
    ("scatter_add", |x, a| {
        one(x[0].scatter_add(1, &a.ints[0], &x[1]))
    }),
    ("scatter_add/dim0", |x, a| {
        one(x[0].scatter_add(0, &a.ints[0], &x[1]))
    }),
    // Sinew's pads are (before, after) outermost dim first; F.pad lists the last dim first.
    ("pad", |x, _| {
        one(x[0].pad(&[(1, 2)], PadMode::Constant(0.5)))
    }),
    ("pad/two_dims", |x, _| {
        one(x[0].pad(&[(1, 0), (2, 1)], PadMode::Constant(-1.0)))
    }),
    ("pad/reflect", |x, _| {
        one(x[0].pad(&[(2, 1)], PadMode::Reflect))
    }),
    ("pad/reflect_two_dims", |x, _| {
        one(x[0].pad(&[(1, 2), (2, 1)], PadMode::Reflect))
    }),
    // Convolution and pooling.
    ("unfold2d", |x, _| {
        one(x[0].unfold2d(&spec(x[0].dims(), (2, 3), (2, 1), (1, 0), (1, 2))?))
    }),
    ("unfold2d/square", |x, _| {
        one(x[0].unfold2d(&spec(x[0].dims(), (3, 3), (2, 2), (1, 1), (1, 1))?))
    }),
    ("fold2d", |x, _| {
        one(x[0].fold2d(&spec(&[2, 2, 5, 6], (2, 3), (2, 1), (1, 0), (1, 2))?))
    }),
    ("fold2d/square", |x, _| {
        one(x[0].fold2d(&spec(&[1, 3, 5, 5], (3, 3), (2, 2), (1, 1), (1, 1))?))
    }),
    ("conv2d", |x, _| {
        one(x[0].conv2d(&x[1], Some(&x[2]), Conv2dConfig::default()))
    }),
    ("conv2d/strided_grouped", |x, _| {
        let cfg = Conv2dConfig {
            stride: (2, 1),
            padding: (1, 1),
            dilation: (1, 2),
            groups: 2,
        };
        one(x[0].conv2d(&x[1], Some(&x[2]), cfg))
    }),
    ("conv2d/no_bias", |x, _| {
        let cfg = Conv2dConfig {
            padding: (1, 1),
            ..Default::default()
        };
        one(x[0].conv2d(&x[1], None, cfg))
    }),
    ("conv2d/relu", |x, _| {
        let cfg = Conv2dConfig {
            stride: (1, 2),
            padding: (1, 1),
            ..Default::default()
        };
        one(x[0].conv2d_then(&x[1], Some(&x[2]), cfg, Some(Activation::Relu)))
    }),
    ("conv1d", |x, _| {
        let cfg = Conv1dConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        one(x[0].conv1d(&x[1], Some(&x[2]), cfg))
    }),
    ("conv1d/dilated_grouped", |x, _| {
        let cfg = Conv1dConfig {
            dilation: 2,
            groups: 2,
            ..Default::default()
        };
        one(x[0].conv1d(&x[1], None, cfg))
    }),
    ("max_pool2d", |x, _| {
        with_indices(x[0].max_pool2d(pool((3, 3), (2, 2), (1, 1), (1, 1), true)))
    }),
    ("max_pool2d/rect_dilated", |x, _| {
        with_indices(x[0].max_pool2d(pool((2, 3), (1, 2), (1, 0), (2, 1), true)))
    }),
    ("max_pool1d", |x, _| {
        with_indices(x[0].max_pool1d(3, Some(2), 1))
    }),
    ("max_pool1d/default_stride", |x, _| {
        with_indices(x[0].max_pool1d(2, None, 0))
    }),
    ("avg_pool2d", |x, _| {
        one(x[0].avg_pool2d(pool((3, 3), (2, 2), (1, 1), (1, 1), true)))
    }),
    ("avg_pool2d/exclude_pad", |x, _| {
        one(x[0].avg_pool2d(pool((2, 3), (1, 2), (1, 1), (1, 1), false)))
    }),
    ("avg_pool1d", |x, _| one(x[0].avg_pool1d(3, Some(2), 1))),
    // Cast.
    ("to_dtype", |x, _| {
        one(x[0].to_dtype(DType::F32)?.to_dtype(DType::F64))
    }),
];

fn f64_tensor(t: &cases::T) -> Tensor {
    Tensor::from_slice(t.data, t.dims).expect("fixture tensor")
}

/// The fixed loss weights: `w[i] = 0.5 + (i % 61) / 64`, exact in f64 (as in generate.py).
fn weights(shape: &Shape) -> Tensor {
    let w: Vec<f64> = (0..shape.elem_count())
        .map(|i| 0.5 + (i % 61) as f64 / 64.0)
        .collect();
    Tensor::from_vec(w, shape.clone()).expect("weights")
}

/// The multi-index of flat position `i` in `dims` (row-major).
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for (d, &n) in dims.iter().enumerate().rev() {
        idx[d] = i % n;
        i /= n;
    }
    idx
}

/// Compares `got` with the reference; the error names the case, what, and the first mismatch.
fn compare(
    case: &str,
    what: &str,
    got: &Tensor,
    want: &cases::T,
) -> std::result::Result<(), String> {
    if got.dims() != want.dims {
        return Err(format!(
            "{case}: {what} has shape {:?}, PyTorch {:?}",
            got.dims(),
            want.dims
        ));
    }
    let got = got
        .to_vec_f64()
        .map_err(|e| format!("{case}: {what}: {e}"))?;
    for (i, (&g, &w)) in got.iter().zip(want.data).enumerate() {
        // Written so that NaN on either side is a mismatch.
        let close = (g - w).abs() <= RTOL * w.abs().max(g.abs()) + ATOL;
        if !close {
            return Err(format!(
                "{case}: {what}[{:?}] (flat {i}) = {g:e}, PyTorch {w:e} (diff {:e})",
                unravel(i, want.dims),
                (g - w).abs()
            ));
        }
    }
    Ok(())
}

/// Runs one case in Sinew and compares the output, indices and every input gradient.
fn check(case: &Case, run: Run) -> std::result::Result<(), String> {
    let name = case.name;
    let err = |e: sinew_tensor::Error| format!("{name}: {e}");
    let leaves: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|t| f64_tensor(t).requires_grad_())
        .collect();
    let args = Args {
        ints: case
            .ints
            .iter()
            .map(|t| Tensor::from_slice(t.data, t.dims).expect("fixture indices"))
            .collect(),
        masks: case
            .masks
            .iter()
            .map(|t| Tensor::from_slice(t.data, t.dims).expect("fixture mask"))
            .collect(),
    };
    let (out, indices) = run(&leaves, &args).map_err(err)?;
    compare(name, "output", &out, &case.output)?;
    match (&indices, &case.indices) {
        (Some(got), Some(want)) => {
            let got_v = got.to_vec::<i64>().map_err(err)?;
            if got.dims() != want.dims || got_v != want.data {
                return Err(format!(
                    "{name}: indices {:?} {got_v:?}, PyTorch {:?} {:?}",
                    got.dims(),
                    want.dims,
                    want.data
                ));
            }
        }
        (None, None) => {}
        _ => return Err(format!("{name}: indices returned on one side only")),
    }
    let w = weights(out.shape());
    out.mul(&w)
        .and_then(|l| l.sum_all())
        .and_then(|l| l.backward())
        .map_err(err)?;
    for (k, (leaf, want)) in leaves.iter().zip(case.grads).enumerate() {
        let grad = leaf
            .grad()
            .ok_or_else(|| format!("{name}: input {k} got no gradient"))?;
        compare(name, &format!("grad of input {k}"), &grad, want)?;
    }
    Ok(())
}

fn runner(name: &str) -> Option<Run> {
    RUNNERS.iter().find(|(n, _)| *n == name).map(|&(_, r)| r)
}

#[test]
fn outputs_and_gradients_match_pytorch() {
    let mut failures = Vec::new();
    for case in CASES {
        let run = runner(case.name)
            .unwrap_or_else(|| panic!("case `{}` has no entry in RUNNERS", case.name));
        if let Err(e) = check(case, run) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_runner_has_a_case_and_names_are_unique() {
    let mut names: Vec<&str> = RUNNERS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "a runner name appears twice");
    for name in names {
        assert!(
            CASES.iter().any(|c| c.name == name),
            "runner `{name}` has no PyTorch case (regenerate cases.rs?)"
        );
    }
}

#[test]
fn every_differentiable_op_has_a_pytorch_case() {
    for op in OP_TABLE.iter().filter(|o| o.differentiable) {
        assert!(
            CASES.iter().any(|c| c.op == op.name),
            "no PyTorch case for differentiable op `{}` (add one to pytorch/generate.py)",
            op.name
        );
    }
    for case in CASES {
        assert!(
            OP_TABLE
                .iter()
                .any(|o| o.name == case.op && o.differentiable),
            "case `{}` names `{}`, not a differentiable op-table entry",
            case.name,
            case.op
        );
        assert!(
            case.name == case.op || case.name.starts_with(&format!("{}/", case.op)),
            "case `{}` should be named after its op `{}`",
            case.name,
            case.op
        );
    }
}

/// The values of `out` (NaN-aware bit patterns, so NaN == NaN), with its shape.
fn fingerprint(out: &Result<Out>) -> std::result::Result<(Vec<usize>, Vec<u64>), String> {
    match out {
        Ok((t, _)) => Ok((
            t.dims().to_vec(),
            t.to_dtype(DType::F64)
                .and_then(|t| t.to_vec::<f64>())
                .map_err(|e| e.to_string())?
                .iter()
                .map(|v| if v.is_nan() { u64::MAX } else { v.to_bits() })
                .collect(),
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The same values in a non-contiguous layout (last two dims stored transposed).
fn non_contiguous(t: &Tensor) -> Tensor {
    if t.rank() < 2 {
        return t.clone();
    }
    t.transpose(-1, -2)
        .and_then(|t| t.contiguous())
        .and_then(|t| t.transpose(-1, -2))
        .expect("transposed copy")
}

/// One op, one definition: every differentiable op gives identical results whether its inputs
/// are tracked (leaves that require grad) or plain tensors, on the PyTorch cases' inputs and on
/// edge variants of them (a NaN in every input, non-contiguous inputs, size-1 and empty slices).
#[test]
fn tracked_and_untracked_forms_agree() {
    let mut failures = Vec::new();
    for case in CASES {
        let run = runner(case.name).expect("runner");
        let args = Args {
            ints: case
                .ints
                .iter()
                .map(|t| Tensor::from_slice(t.data, t.dims).unwrap())
                .collect(),
            masks: case
                .masks
                .iter()
                .map(|t| Tensor::from_slice(t.data, t.dims).unwrap())
                .collect(),
        };
        let plain: Vec<Tensor> = case.inputs.iter().map(f64_tensor).collect();
        let with_nan: Vec<Tensor> = plain
            .iter()
            .map(|t| {
                let mut v = t.to_vec::<f64>().unwrap();
                if let Some(first) = v.first_mut() {
                    *first = f64::NAN;
                }
                Tensor::from_vec(v, t.shape().clone()).unwrap()
            })
            .collect();
        let strided: Vec<Tensor> = plain.iter().map(non_contiguous).collect();
        let sliced: Vec<Tensor> = plain
            .iter()
            .map(|t| match t.rank() {
                0 => t.clone(),
                _ => t.narrow(0, 0, t.dims()[0].min(1)).unwrap(),
            })
            .collect();
        let emptied: Vec<Tensor> = plain
            .iter()
            .map(|t| match t.rank() {
                0 => t.clone(),
                _ => t.narrow(0, 0, 0).unwrap(),
            })
            .collect();
        for (variant, inputs) in [
            ("values", plain),
            ("nan", with_nan),
            ("non-contiguous", strided),
            ("size-1", sliced),
            ("empty", emptied),
        ] {
            let tracked: Vec<Tensor> = inputs.iter().map(|t| t.clone().requires_grad_()).collect();
            let a = fingerprint(&run(&inputs, &args));
            let b = fingerprint(&run(&tracked, &args));
            if a != b {
                failures.push(format!(
                    "{} ({variant}): untracked {a:?} vs tracked {b:?}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
