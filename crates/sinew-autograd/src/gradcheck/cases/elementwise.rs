//! Gradcheck entries of unary, binary, select and cast ops.

use proptest::prelude::*;
use sinew_tensor::{DType, Result, Tensor};

use super::GradcheckEntry;
use crate::gradcheck::strategy::{Domain, broadcast_pair, check1, check2, drive, tensor};
use crate::gradcheck::{GradcheckOptions, gradcheck};

/// A unary op on a random tensor, applied to a transposed (non-contiguous) view half the time.
fn unary(op: &'static str, domain: Domain, f: fn(&Tensor) -> Result<Tensor>) -> GradcheckEntry {
    GradcheckEntry::new(op, move |cases| {
        drive(
            cases,
            (tensor(0..=3, domain), any::<bool>()),
            |(x, transposed)| {
                check1(x, |v| {
                    if *transposed && v.rank() >= 2 {
                        f(&v.t()?)
                    } else {
                        f(v)
                    }
                })
            },
        )
    })
}

/// A binary op on two broadcastable tensors.
fn binary(
    op: &'static str,
    a: Domain,
    b: Domain,
    f: fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> GradcheckEntry {
    GradcheckEntry::new(op, move |cases| {
        drive(cases, broadcast_pair(a, b), |(x, y)| check2(x, y, f))
    })
}

fn mask_like(x: &Tensor, bits: &[bool]) -> Tensor {
    let bits: Vec<bool> = (0..x.elem_count()).map(|i| bits[i % bits.len()]).collect();
    Tensor::from_vec(bits, x.shape().clone()).expect("mask shape")
}

pub(super) fn entries() -> Vec<GradcheckEntry> {
    use Domain::*;
    vec![
        unary("neg", Any, |x| x.neg()),
        unary("abs", AwayFromZero, |x| x.abs()),
        unary("exp", Any, |x| x.exp()),
        unary("log", Positive, |x| x.log()),
        unary("log1p", Positive, |x| x.log1p()),
        unary("sqrt", Positive, |x| x.sqrt()),
        unary("rsqrt", Positive, |x| x.rsqrt()),
        unary("sin", Any, |x| x.sin()),
        unary("cos", Any, |x| x.cos()),
        unary("tanh", Any, |x| x.tanh()),
        unary("sigmoid", Any, |x| x.sigmoid()),
        unary("relu", AwayFromZero, |x| x.relu()),
        unary("leaky_relu", AwayFromZero, |x| x.leaky_relu(0.1)),
        unary("elu", AwayFromZero, |x| x.elu(1.3)),
        unary("gelu", Any, |x| x.gelu()),
        unary("erf", Any, |x| x.erf()),
        unary("softplus", Any, |x| x.softplus(1.5, 20.0)),
        unary("step", AwayFromZero, |x| x.step(0.5)),
        unary("sign", AwayFromZero, |x| x.sign()),
        unary("clamp", Any, |x| x.clamp(-0.5, 0.7)),
        unary("powf", Positive, |x| x.powf(2.5)),
        unary("recip", AwayFromZero, |x| x.recip()),
        unary("square", Any, |x| x.square()),
        unary("add_scalar", Any, |x| x.add_scalar(0.7)),
        unary("mul_scalar", Any, |x| x.mul_scalar(-1.3)),
        unary("div_scalar", Any, |x| x.div_scalar(2.5)),
        unary("rsub_scalar", Any, |x| x.rsub_scalar(1.5)),
        unary("rdiv_scalar", AwayFromZero, |x| x.rdiv_scalar(2.0)),
        binary("add", Any, Any, |a, b| a.add(b)),
        binary("sub", Any, Any, |a, b| a.sub(b)),
        binary("mul", Any, Any, |a, b| a.mul(b)),
        binary("div", Any, AwayFromZero, |a, b| a.div(b)),
        binary("pow", Positive, Any, |a, b| a.pow(b)),
        binary("maximum", Any, Any, |a, b| a.maximum(b)),
        binary("minimum", Any, Any, |a, b| a.minimum(b)),
        // |a| >= 0.2 and |0.05 b| <= 0.1 keep every sum at least 0.1 from ReLU's kink.
        binary("add_relu", AwayFromZero, Any, |a, b| {
            a.add_relu(&b.mul_scalar(0.05)?)
        }),
        GradcheckEntry::new("where_cond", |cases| {
            drive(
                cases,
                (
                    broadcast_pair(Any, Any),
                    proptest::collection::vec(any::<bool>(), 1..8),
                ),
                |((a, b), bits)| {
                    let shape = a.shape().broadcast(b.shape(), "where_cond")?;
                    let cond = mask_like(&Tensor::zeros(shape, DType::F64, a.device())?, bits);
                    check2(a, b, |x, y| cond.where_cond(x, y))
                },
            )
        }),
        GradcheckEntry::new("masked_fill", |cases| {
            drive(
                cases,
                (
                    tensor(0..=3, Any),
                    proptest::collection::vec(any::<bool>(), 1..8),
                ),
                |(x, bits)| {
                    let mask = mask_like(x, bits);
                    check1(x, |v| v.masked_fill(&mask, 1.5))
                },
            )
        }),
        GradcheckEntry::new("to_dtype", |cases| {
            // Through f32 and back: a coarser step keeps f32 rounding below the tolerance.
            let options = GradcheckOptions {
                eps: 1e-2,
                atol: 1e-4,
                rtol: 1e-3,
            };
            drive(cases, tensor(0..=3, Any), move |x| {
                gradcheck(
                    |v| {
                        v[0].to_dtype(DType::F32)?
                            .mul_scalar(3.0)?
                            .to_dtype(DType::F64)
                    },
                    std::slice::from_ref(x),
                    options,
                )
            })
        }),
    ]
}
