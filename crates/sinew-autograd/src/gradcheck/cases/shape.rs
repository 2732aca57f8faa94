//! Gradcheck entries of matmul, views and index ops.

use proptest::collection::vec;
use proptest::prelude::*;
use sinew_tensor::{Activation, MatmulOptions, PadMode, Result, Shape, Tensor};

use super::GradcheckEntry;
use crate::gradcheck::strategy::{Domain, check1, check2, check3, drive, shape, tensor, tensor_of};

fn i64s(v: Vec<i64>, dims: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(v, dims)
}

/// A view op with a random tensor and a random selector in `0..256`.
fn view(op: &'static str, f: fn(&Tensor, usize) -> Result<Tensor>) -> GradcheckEntry {
    GradcheckEntry::new(op, move |cases| {
        drive(
            cases,
            (tensor(1..=3, Domain::Any), 0..256usize),
            |(x, k)| check1(x, |v| f(v, *k)),
        )
    })
}

fn matmul_entry() -> GradcheckEntry {
    GradcheckEntry::new("matmul", |cases| {
        // (batch_a, batch_b, m, k, n, variant): variant 0 plain, 1 lhs 1-d, 2 rhs 1-d, 3 transposed lhs.
        let dims = (
            0..=2usize,
            0..=2usize,
            1..=4usize,
            1..=4usize,
            1..=4usize,
            0..4usize,
        );
        let strategy = dims.prop_flat_map(|(ba, bb, m, k, n, variant)| {
            let a_dims: Vec<usize> = match variant {
                1 => vec![k],
                3 => [vec![2; ba], vec![k, m]].concat(),
                _ => [vec![2; ba], vec![m, k]].concat(),
            };
            let b_dims: Vec<usize> = if variant == 2 {
                vec![k]
            } else {
                [vec![if bb == 1 { 1 } else { 2 }; bb], vec![k, n]].concat()
            };
            (
                tensor_of(a_dims, Domain::Any),
                tensor_of(b_dims, Domain::Any),
                Just(variant),
            )
        });
        drive(cases, strategy, |(a, b, variant)| {
            check2(a, b, |x, y| {
                if *variant == 3 {
                    x.transpose(-2, -1)?.matmul(y)
                } else {
                    x.matmul(y)
                }
            })
        })
    })
}

/// `matmul_with`'s recorded op: `act(a @ b + bias)` with a bias, with ReLU after it, with the
/// right operand transposed (a linear layer's `x @ w.t()`), and with a batch of left operands.
/// The product is scaled by 0.01 (|a @ b| <= 0.16) and the bias drawn away from zero (>= 0.2),
/// so no pre-activation sits at ReLU's kink.
fn matmul_with_entry() -> GradcheckEntry {
    GradcheckEntry::new("matmul_with", |cases| {
        // (batch, m, k, n, variant): 0 bias, 1 bias + relu, 2 transposed rhs + relu, 3 batched.
        let dims = (0..=1usize, 1..=4usize, 1..=4usize, 1..=4usize, 0..4usize);
        let strategy = dims.prop_flat_map(|(batch, m, k, n, variant)| {
            let batch = if variant == 3 { batch + 1 } else { 0 };
            let a_dims = [vec![2; batch], vec![m, k]].concat();
            let b_dims = if variant == 2 { vec![n, k] } else { vec![k, n] };
            (
                tensor_of(a_dims, Domain::Any),
                tensor_of(b_dims, Domain::Any),
                tensor_of(vec![n], Domain::AwayFromZero),
                Just(variant),
            )
        });
        drive(cases, strategy, |(a, b, bias, variant)| {
            check3(a, b, bias, |x, y, c| {
                let x = x.mul_scalar(0.01)?;
                let y = if *variant == 2 { y.t()? } else { y.clone() };
                let opts = MatmulOptions::new().with_bias(c);
                let opts = if matches!(variant, 1 | 2) {
                    opts.with_activation(Activation::Relu)
                } else {
                    opts
                };
                x.matmul_with(&y, opts)
            })
        })
    })
}

fn cat_like(op: &'static str, stack: bool) -> GradcheckEntry {
    GradcheckEntry::new(op, move |cases| {
        let strategy = (shape(1..=3, 1..=3), 0..3usize, vec(1..=3usize, 3)).prop_flat_map(
            move |(dims, d, sizes)| {
                let d = d % dims.len();
                let parts: Vec<_> = sizes
                    .iter()
                    .map(|&s| {
                        let mut p = dims.clone();
                        if !stack {
                            p[d] = s;
                        }
                        tensor_of(p, Domain::Any)
                    })
                    .collect();
                (parts, Just(d))
            },
        );
        drive(cases, strategy, move |(parts, d)| {
            crate::gradcheck::gradcheck(
                |v| {
                    if stack {
                        Tensor::stack(v, *d as isize)
                    } else {
                        Tensor::cat(v, *d as isize)
                    }
                },
                parts,
                crate::gradcheck::strategy::CASE_OPTIONS,
            )
        })
    })
}

/// Splits and rejoins with a different weight per piece, so every piece's gradient is distinct.
fn rejoin(pieces: Vec<Tensor>, dim: isize) -> Result<Tensor> {
    let scaled = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| p.mul_scalar(i as f64 + 1.0))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&scaled, dim)
}

/// A 2-d tensor, a dim, and per-row distinct indices into that dim (for gather/scatter).
fn indexed() -> impl Strategy<Value = (Tensor, usize, Tensor)> {
    (2..=4usize, 2..=4usize, 0..2usize, 1..=2usize).prop_flat_map(|(r, c, dim, keep)| {
        let (rows, len) = if dim == 1 { (r, c) } else { (c, r) };
        let perms = vec(
            Just((0..len as i64).collect::<Vec<_>>()).prop_shuffle(),
            rows,
        );
        (
            tensor_of(vec![r, c], Domain::Any),
            Just(dim),
            perms,
            Just(keep.min(len)),
        )
            .prop_map(move |(x, dim, perms, keep)| {
                // index[i][j] along `dim` is perms[i][j]: distinct within each row/column.
                let (ir, ic) = if dim == 1 { (rows, keep) } else { (keep, rows) };
                let mut idx = vec![0i64; ir * ic];
                for (line, perm) in perms.iter().enumerate() {
                    for (j, &p) in perm.iter().take(keep).enumerate() {
                        let (i0, i1) = if dim == 1 { (line, j) } else { (j, line) };
                        idx[i0 * ic + i1] = p;
                    }
                }
                (x, dim, i64s(idx, [ir, ic]).expect("index shape"))
            })
    })
}

pub(super) fn entries() -> Vec<GradcheckEntry> {
    vec![
        matmul_entry(),
        matmul_with_entry(),
        view("reshape", |x, _| {
            x.reshape(x.dims().iter().rev().copied().collect::<Vec<_>>())
        }),
        view("permute", |x, k| {
            let mut order: Vec<usize> = (0..x.rank()).collect();
            order.rotate_left(k % x.rank());
            x.permute(&order)
        }),
        view("transpose", |x, k| x.transpose((k % x.rank()) as isize, -1)),
        view("narrow", |x, k| {
            let n = x.dims()[0];
            x.narrow(0, k % n, 1 + (k / 7) % (n - k % n))
        }),
        view("slice", |x, k| {
            x.slice(-1, k % 2, 4, 1 + k % 3)?.mul_scalar(2.0)
        }),
        view("squeeze", |x, k| {
            x.unsqueeze((k % (x.rank() + 1)) as isize)?
                .squeeze((k % (x.rank() + 1)) as isize)?
                .mul_scalar(2.0)
        }),
        view("unsqueeze", |x, k| {
            x.unsqueeze(-1 - (k % (x.rank() + 1)) as isize)
        }),
        view("broadcast_to", |x, k| {
            let mut dims = vec![1 + k % 3];
            dims.extend_from_slice(x.dims());
            x.broadcast_to(dims)
        }),
        view("flatten", |x, k| x.flatten((k % x.rank()) as isize, -1)),
        view("contiguous", |x, _| {
            x.t().or_else(|_| Ok(x.clone()))?.contiguous()
        }),
        cat_like("cat", false),
        cat_like("stack", true),
        view("split", |x, k| rejoin(x.split(1 + k % 3, -1)?, -1)),
        view("chunk", |x, k| rejoin(x.chunk(1 + k % 3, 0)?, 0)),
        GradcheckEntry::new("index_select", |cases| {
            let strategy = (tensor(1..=3, Domain::Any), vec(0..16i64, 1..6), 0..3usize);
            drive(cases, strategy, |(x, raw, d)| {
                let d = d % x.rank();
                let idx: Vec<i64> = raw.iter().map(|i| i % x.dims()[d] as i64).collect();
                let idx = i64s(idx.clone(), [idx.len()])?;
                check1(x, |v| v.index_select(d as isize, &idx))
            })
        }),
        GradcheckEntry::new("gather", |cases| {
            drive(cases, indexed(), |(x, d, idx)| {
                check1(x, |v| v.gather(*d as isize, idx))
            })
        }),
        GradcheckEntry::new("scatter", |cases| {
            drive(
                cases,
                (indexed(), tensor_of(vec![4, 4], Domain::Any)),
                |((x, d, idx), vals)| {
                    let vals = vals
                        .narrow(0, 0, idx.dims()[0])?
                        .narrow(1, 0, idx.dims()[1])?
                        .contiguous()?;
                    check2(x, &vals, |b, v| b.scatter(*d as isize, idx, v))
                },
            )
        }),
        GradcheckEntry::new("scatter_add", |cases| {
            drive(
                cases,
                (indexed(), tensor_of(vec![4, 4], Domain::Any)),
                |((x, d, idx), vals)| {
                    // Values larger than the index: only the index's extent is read.
                    check2(x, vals, |b, v| b.scatter_add(*d as isize, idx, v))
                },
            )
        }),
        view("pad", |x, k| {
            let n = *x.dims().last().expect("rank >= 1");
            match (k % 4, n) {
                (0, _) | (_, 0 | 1) => x.pad(&[(k % 3, 1)], PadMode::Constant(0.5)),
                (1, _) => x.pad(&[(1, (k / 2) % (n - 1))], PadMode::Reflect),
                // Repeated edges and wraps: several outputs read one input.
                (2, _) => x.pad(&[(2, k % 3)], PadMode::Replicate),
                _ => x.pad(&[(k % (n + 1), n)], PadMode::Circular),
            }
        }),
    ]
}
