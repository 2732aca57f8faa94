//! Gradcheck entries of the losses (gradients with respect to the inputs; targets fixed).

use proptest::prelude::*;
use sinew_autograd::gradcheck::gradcheck;
use sinew_autograd::gradcheck::strategy::{CASE_OPTIONS, Domain, check1, drive, tensor_of};
use sinew_tensor::{Result, Tensor};

use super::GradcheckEntry;
use crate::loss::*;

/// An entry checking `f(input)` for an input of `dims` drawn from `domain`.
fn unary(
    name: &'static str,
    dims: Vec<usize>,
    domain: Domain,
    f: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + Copy + 'static,
) -> GradcheckEntry {
    GradcheckEntry::new(name, move |cases| {
        drive(cases, tensor_of(dims.clone(), domain), move |x| {
            check1(x, f)
        })
    })
}

fn labels(values: &[i64], dims: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(values.to_vec(), dims.to_vec())
}

fn zeros_like_input(x: &Tensor) -> Result<Tensor> {
    x.detach().zeros_like()
}

pub(super) fn entries() -> Vec<GradcheckEntry> {
    vec![
        unary("nn.mse_loss", vec![3, 4], Domain::Any, |x| {
            mse_loss(x, &zeros_like_input(x)?.add_scalar(0.5)?, Reduction::Mean)
        }),
        unary("nn.l1_loss", vec![3, 4], Domain::AwayFromZero, |x| {
            l1_loss(x, &zeros_like_input(x)?, Reduction::Sum)
        }),
        unary("nn.smooth_l1_loss", vec![3, 4], Domain::AwayFromZero, |x| {
            smooth_l1_loss(x, &zeros_like_input(x)?, 0.7, Reduction::Mean)
        }),
        unary("nn.huber_loss", vec![3, 4], Domain::AwayFromZero, |x| {
            huber_loss(x, &zeros_like_input(x)?, 1.3, Reduction::Mean)
        }),
        unary("nn.cross_entropy", vec![4, 3], Domain::Any, |x| {
            let t = labels(&[0, 2, -100, 1], &[4])?;
            let w = Tensor::from_vec(vec![0.5f64, 2.0, 1.0], [3])?;
            let weighted = CrossEntropyLoss::new()
                .weight(w)
                .label_smoothing(0.2)
                .forward(x, &t)?;
            weighted.add(&cross_entropy(x, &labels(&[1, 0, 2, 2], &[4])?)?)
        }),
        unary(
            "nn.cross_entropy_nchw_probs",
            vec![2, 3, 2, 2],
            Domain::Any,
            |x| {
                let t = labels(&[0, 1, 2, 1, 2, 0, 0, 1], &[2, 2, 2])?;
                let fixed: Vec<f64> = (0..24).map(|i| (i % 5) as f64 * 0.3).collect();
                let probs = Tensor::from_vec(fixed, [2, 3, 2, 2])?.softmax(1)?;
                let smooth = CrossEntropyLoss::new().label_smoothing(0.1);
                cross_entropy(x, &t)?.add(&smooth.forward(x, &probs)?)
            },
        ),
        unary("nn.nll_loss", vec![4, 3], Domain::Any, |x| {
            nll_loss(&x.log_softmax(1)?, &labels(&[2, 0, 1, 1], &[4])?)
        }),
        unary("nn.binary_cross_entropy", vec![3, 2], Domain::Any, |x| {
            let t = zeros_like_input(x)?.add_scalar(0.3)?;
            binary_cross_entropy(&x.sigmoid()?, &t)
        }),
        unary("nn.bce_with_logits", vec![3, 2], Domain::Any, |x| {
            let t = Tensor::from_vec(vec![1.0f64, 0.0, 0.5, 1.0, 0.0, 0.25], [3, 2])?;
            let loss = BceWithLogitsLoss {
                pos_weight: Some(Tensor::from_vec(vec![2.0f64, 0.5], [2])?),
                ..Default::default()
            };
            loss.forward(x, &t)
        }),
        GradcheckEntry::new("nn.kl_div", |cases| {
            let s = (
                tensor_of(vec![3, 4], Domain::Any),
                tensor_of(vec![3, 4], Domain::Positive),
            );
            drive(cases, s, |(x, t)| {
                check1(x, |v| {
                    kl_div(v, t, Reduction::BatchMean, false)?.add(&kl_div(
                        v,
                        &t.log()?,
                        Reduction::Sum,
                        true,
                    )?)
                })
            })
        }),
        GradcheckEntry::new("nn.cosine_embedding_loss", |cases| {
            let s = (
                tensor_of(vec![4, 3], Domain::Any),
                tensor_of(vec![4, 3], Domain::Any),
            );
            drive(cases, s, |(a, b)| {
                let y = Tensor::from_vec(vec![1.0f64, -1.0, 1.0, -1.0], [4])?;
                gradcheck(
                    |v| {
                        cosine_embedding_loss(&v[0], &v[1], &y, -2.0, Reduction::Mean)?
                            .add(&cosine_similarity(&v[0], &v[1], 1, 1e-8)?.sum_all()?)
                    },
                    &[a.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        // The L2 norm along dim 1 and the L1 norm (away from its kink at 0) along dim 0.
        unary("nn.normalize", vec![3, 4], Domain::AwayFromZero, |x| {
            normalize(x, 2.0, 1, 1e-12)?.add(&normalize(x, 1.0, 0, 1e-12)?)
        }),
        unary(
            "nn.hinge_embedding_loss",
            vec![2, 3],
            Domain::AwayFromZero,
            |x| {
                let y = Tensor::from_vec(vec![1.0f64, -1.0, -1.0, 1.0, -1.0, 1.0], [2, 3])?;
                hinge_embedding_loss(x, &y, 0.0, Reduction::Mean)
            },
        ),
        unary(
            "nn.margin_ranking_loss",
            vec![6],
            Domain::AwayFromZero,
            |x| {
                // Margin 0 against zeros: the hinge's kink is at x = 0, which |x| >= 0.2 avoids.
                let y = Tensor::from_vec(vec![1.0f64, -1.0, -1.0, 1.0, -1.0, 1.0], [6])?;
                margin_ranking_loss(x, &zeros_like_input(x)?, &y, 0.0, Reduction::Mean)
            },
        ),
        unary("nn.soft_margin_losses", vec![2, 3], Domain::Any, |x| {
            let y = Tensor::from_vec(vec![1.0f64, -1.0, -1.0, 1.0, -1.0, 1.0], [2, 3])?;
            let t = Tensor::from_vec(vec![1.0f64, 0.0, 0.0, 1.0, 0.0, 1.0], [2, 3])?;
            let w = Tensor::from_vec(vec![0.5f64, 1.0, 2.0], [3])?;
            soft_margin_loss(x, &y, Reduction::Sum)?.add(&multilabel_soft_margin_loss(
                x,
                &t,
                Some(&w),
                Reduction::Mean,
            )?)
        }),
        GradcheckEntry::new("nn.triplet_margin_loss", |cases| {
            let s = (
                tensor_of(vec![2, 3], Domain::Any),
                tensor_of(vec![2, 3], Domain::Any),
                tensor_of(vec![2, 3], Domain::Any),
                any::<bool>(),
            );
            drive(cases, s, |(a, p, n, swap)| {
                // A margin above every distance keeps the hinge open.
                let loss = TripletMarginLoss {
                    margin: 10.0,
                    swap: *swap,
                    ..Default::default()
                };
                gradcheck(
                    |v| loss.forward(&v[0], &v[1], &v[2]),
                    &[a.clone(), p.clone(), n.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        unary("nn.poisson_nll_loss", vec![2, 3], Domain::Positive, |x| {
            let y = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0, 0.5, 7.0], [2, 3])?;
            poisson_nll_loss(x, &y, true, false, 1e-8, Reduction::Mean)?.add(&poisson_nll_loss(
                x,
                &y,
                false,
                true,
                1e-8,
                Reduction::Sum,
            )?)
        }),
        GradcheckEntry::new("nn.gaussian_nll_loss", |cases| {
            let s = (
                tensor_of(vec![2, 3], Domain::Any),
                tensor_of(vec![2, 3], Domain::Positive),
            );
            drive(cases, s, |(mu, var)| {
                let y = Tensor::from_vec(vec![0.5f64, -1.0, 0.0, 2.0, 0.3, -0.7], [2, 3])?;
                gradcheck(
                    |v| gaussian_nll_loss(&v[0], &y, &v[1], true, 1e-6, Reduction::Mean),
                    &[mu.clone(), var.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.multi_margin_loss", |cases| {
            let s = (tensor_of(vec![3, 4], Domain::Spaced), any::<bool>());
            drive(cases, s, |(x, p2)| {
                let t = labels(&[0, 3, 1], &[3])?;
                let loss = MultiMarginLoss {
                    p: if *p2 { 2 } else { 1 },
                    margin: 0.6,
                    weight: Some(Tensor::from_vec(vec![1.0f64, 0.5, 2.0, 1.5], [4])?),
                    reduction: Reduction::Mean,
                };
                check1(x, |v| loss.forward(v, &t))
            })
        }),
    ]
}
