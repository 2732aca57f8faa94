//! Gradcheck entries of convolution, unfold/fold and pooling.

use proptest::prelude::*;
use sinew_tensor::{Activation, Conv1dConfig, Conv2dConfig, Pool2dConfig, Tensor};

use super::GradcheckEntry;
use crate::gradcheck::gradcheck;
use crate::gradcheck::strategy::{CASE_OPTIONS, Domain, check1, check2, drive, tensor_of};

/// (height, width) of one window parameter.
type Pair = (usize, usize);

/// Window geometry: (kernel, stride, padding, dilation), kept valid for inputs of at least 5x5.
fn window() -> impl Strategy<Value = (Pair, Pair, Pair, Pair)> {
    (
        (1..=3usize, 1..=3usize),
        (1..=2usize, 1..=2usize),
        (0..=1usize, 0..=1usize),
        (1..=2usize, 1..=2usize),
    )
}

fn image(c: usize, domain: Domain) -> BoxedStrategy<Tensor> {
    (1..=2usize, 5..=6usize, 5..=6usize)
        .prop_flat_map(move |(n, h, w)| tensor_of(vec![n, c, h, w], domain))
        .boxed()
}

pub(super) fn entries() -> Vec<GradcheckEntry> {
    vec![
        GradcheckEntry::new("unfold2d", |cases| {
            drive(
                cases,
                (image(2, Domain::Any), window()),
                |(x, (k, s, p, d))| {
                    let spec = x.unfold_spec("unfold2d", *k, *s, *p, *d, 0.0)?;
                    check1(x, |v| v.unfold2d(&spec))
                },
            )
        }),
        GradcheckEntry::new("fold2d", |cases| {
            drive(
                cases,
                (image(2, Domain::Any), window()),
                |(x, (k, s, p, d))| {
                    let spec = x.unfold_spec("fold2d", *k, *s, *p, *d, 0.0)?;
                    let cols = x.unfold2d(&spec)?.mul_scalar(0.5)?;
                    check1(&cols, |v| v.fold2d(&spec))
                },
            )
        }),
        // Half the cases with ReLU in the epilogue (`conv2d_then`): the input is then scaled by
        // 0.001 (|conv| <= 0.15) and the bias drawn away from zero (>= 0.2), so no output sits
        // at ReLU's kink.
        GradcheckEntry::new("conv2d", |cases| {
            let strategy = (
                image(4, Domain::Any),
                1..=2usize,
                window(),
                tensor_of(vec![4, 4, 3, 3], Domain::Any),
                tensor_of(vec![4], Domain::AwayFromZero),
                any::<bool>(),
            );
            drive(cases, strategy, |(x, groups, (k, s, p, d), w, b, relu)| {
                let w = w
                    .narrow(1, 0, 4 / groups)?
                    .narrow(2, 0, k.0)?
                    .narrow(3, 0, k.1)?
                    .contiguous()?;
                let cfg = Conv2dConfig {
                    stride: *s,
                    padding: *p,
                    dilation: *d,
                    groups: *groups,
                };
                let relu = *relu;
                gradcheck(
                    |v| {
                        if relu {
                            let x = v[0].mul_scalar(0.001)?;
                            x.conv2d_then(&v[1], Some(&v[2]), cfg, Some(Activation::Relu))
                        } else {
                            v[0].conv2d(&v[1], Some(&v[2]), cfg)
                        }
                    },
                    &[x.clone(), w, b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("conv1d", |cases| {
            let strategy = (
                (1..=2usize, 4..=7usize)
                    .prop_flat_map(|(n, l)| tensor_of(vec![n, 2, l], Domain::Any)),
                tensor_of(vec![3, 2, 2], Domain::Any),
                1..=2usize,
                0..=1usize,
            );
            drive(cases, strategy, |(x, w, stride, padding)| {
                let cfg = Conv1dConfig {
                    stride: *stride,
                    padding: *padding,
                    ..Default::default()
                };
                check2(x, w, |a, b| a.conv1d(b, None, cfg))
            })
        }),
        GradcheckEntry::new("max_pool2d", |cases| {
            drive(
                cases,
                (image(2, Domain::Spaced), 2..=3usize, 1..=2usize, 0..=1usize),
                |(x, k, s, p)| {
                    let cfg = Pool2dConfig {
                        stride: Some((*s, *s)),
                        padding: (*p, *p),
                        ..Pool2dConfig::new(*k)
                    };
                    check1(x, |v| Ok(v.max_pool2d(cfg)?.0))
                },
            )
        }),
        GradcheckEntry::new("avg_pool2d", |cases| {
            drive(
                cases,
                (
                    image(2, Domain::Any),
                    2..=3usize,
                    1..=2usize,
                    0..=1usize,
                    any::<bool>(),
                ),
                |(x, k, s, p, include)| {
                    let cfg = Pool2dConfig {
                        stride: Some((*s, *s)),
                        padding: (*p, *p),
                        count_include_pad: *include,
                        ..Pool2dConfig::new(*k)
                    };
                    check1(x, |v| v.avg_pool2d(cfg))
                },
            )
        }),
        GradcheckEntry::new("max_pool1d", |cases| {
            let x = (1..=2usize, 4..=8usize)
                .prop_flat_map(|(n, l)| tensor_of(vec![n, 2, l], Domain::Spaced));
            drive(cases, (x, 1..=2usize), |(x, s)| {
                check1(x, |v| Ok(v.max_pool1d(2, Some(*s), 0)?.0))
            })
        }),
        GradcheckEntry::new("avg_pool1d", |cases| {
            let x = (1..=2usize, 4..=8usize)
                .prop_flat_map(|(n, l)| tensor_of(vec![n, 2, l], Domain::Any));
            drive(cases, (x, 1..=2usize), |(x, s)| {
                check1(x, |v| v.avg_pool1d(3, Some(*s), 1))
            })
        }),
    ]
}
