//! Gradcheck entries of the layers' functional forms.

use proptest::prelude::*;
use sinew_autograd::gradcheck::gradcheck;
use sinew_autograd::gradcheck::strategy::{CASE_OPTIONS, Domain, check1, drive, tensor_of};
use sinew_tensor::{DType, PadMode, Tensor, manual_seed};

use super::GradcheckEntry;
use crate::functional as F;
use crate::{Conv2dOptions, Interpolation, Padding, PoolOptions, UpsampleTo};

pub(super) fn image(c: usize, h: usize, w: usize, domain: Domain) -> BoxedStrategy<Tensor> {
    (1..=2usize)
        .prop_flat_map(move |n| tensor_of(vec![n, c, h, w], domain))
        .boxed()
}

fn pooled(name: &'static str, opts: PoolOptions, max: bool) -> GradcheckEntry {
    GradcheckEntry::new(name, move |cases| {
        let domain = if max { Domain::Spaced } else { Domain::Any };
        drive(cases, image(2, 7, 8, domain), move |x| {
            check1(x, |v| {
                if max {
                    Ok(F::max_pool2d_with_indices(v, &opts)?.0)
                } else {
                    F::avg_pool2d(v, &opts)
                }
            })
        })
    })
}

pub(super) fn entries() -> Vec<GradcheckEntry> {
    let ceil = PoolOptions::new(3).stride(2).ceil_mode(true);
    vec![
        GradcheckEntry::new("nn.linear", |cases| {
            let s = (1..=3usize, 1..=4usize, 1..=3usize).prop_flat_map(|(n, i, o)| {
                (
                    tensor_of(vec![n, i], Domain::Any),
                    tensor_of(vec![o, i], Domain::Any),
                    tensor_of(vec![o], Domain::Any),
                )
            });
            drive(cases, s, |(x, w, b)| {
                gradcheck(
                    |v| F::linear(&v[0], &v[1], Some(&v[2])),
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.conv2d_same", |cases| {
            let s = (
                image(2, 5, 6, Domain::Any),
                tensor_of(vec![3, 2, 3, 4], Domain::Any),
            );
            drive(cases, s, |(x, w)| {
                let opts = Conv2dOptions::default().same();
                gradcheck(
                    |v| F::conv2d(&v[0], &v[1], None, &opts),
                    &[x.clone(), w.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        // One or two groups: the weight's 3 output channels per group, 3 or 6 in all (the
        // bias's first ones).
        GradcheckEntry::new("nn.conv_transpose2d", |cases| {
            let s = (
                image(2, 3, 3, Domain::Any),
                tensor_of(vec![2, 3, 3, 3], Domain::Any),
                tensor_of(vec![6], Domain::Any),
                (1..=2usize, 0..=1usize, 1..=2usize),
            );
            drive(cases, s, |(x, w, b, (stride, pad, groups))| {
                let opts = Conv2dOptions::default()
                    .stride(*stride)
                    .padding(*pad)
                    .groups(*groups);
                let out_pad = (*stride - 1, *stride - 1);
                gradcheck(
                    |v| {
                        let bias = v[2].narrow(0, 0, 3 * groups)?;
                        F::conv_transpose2d(&v[0], &v[1], Some(&bias), &opts, out_pad)
                    },
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        pooled("nn.max_pool2d_ceil", ceil, true),
        pooled(
            "nn.avg_pool2d_ceil",
            ceil.padding(1).count_include_pad(false),
            false,
        ),
        GradcheckEntry::new("nn.adaptive_avg_pool2d", |cases| {
            drive(cases, image(2, 7, 8, Domain::Any), |x| {
                let pool = crate::AdaptiveAvgPool2d::new((3, 3));
                check1(x, |v| crate::Module::forward(&pool, v))
            })
        }),
        GradcheckEntry::new("nn.adaptive_max_pool2d", |cases| {
            drive(cases, image(2, 7, 8, Domain::Spaced), |x| {
                let pool = crate::AdaptiveMaxPool2d::new((2, 3));
                check1(x, |v| crate::Module::forward(&pool, v))
            })
        }),
        GradcheckEntry::new("nn.batch_norm", |cases| {
            let s = (
                (3..=4usize).prop_flat_map(|n| tensor_of(vec![n, 2, 3, 3], Domain::Any)),
                tensor_of(vec![2], Domain::AwayFromZero),
                tensor_of(vec![2], Domain::Any),
                any::<bool>(),
            );
            drive(cases, s, |(x, w, b, training)| {
                let rm = Tensor::zeros([2], DType::F64, x.device())?.add_scalar(0.1)?;
                let rv = Tensor::ones([2], DType::F64, x.device())?.mul_scalar(1.5)?;
                gradcheck(
                    |v| {
                        let (m, var) = (rm.clone(), rv.clone());
                        F::batch_norm(
                            &v[0],
                            Some(&m),
                            Some(&var),
                            Some(&v[1]),
                            Some(&v[2]),
                            *training,
                            0.1,
                            1e-5,
                        )
                    },
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        // A ResNet block's last batch norm, shortcut sum and ReLU as one node (training).
        GradcheckEntry::new("nn.batch_norm_add_relu", |cases| {
            let s = (3..=4usize).prop_flat_map(|n| {
                let shape = vec![n, 2, 3, 3];
                (
                    tensor_of(shape.clone(), Domain::Any),
                    tensor_of(shape, Domain::Any),
                )
            });
            drive(cases, s, |(x, residual)| {
                let bn = crate::BatchNorm2d::new(2)?;
                crate::ModuleExt::to_dtype(&bn, DType::F64)?;
                let weight = Tensor::from_vec(vec![1.5f64, -0.75], [2])?;
                bn.weight.as_ref().expect("affine").set_value(weight)?;
                gradcheck(
                    |v| bn.forward_add_relu(&v[0], &v[1]),
                    &[x.clone(), residual.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.layer_norm", |cases| {
            let s = (
                tensor_of(vec![2, 3, 4], Domain::Any),
                tensor_of(vec![3, 4], Domain::Any),
                tensor_of(vec![3, 4], Domain::Any),
            );
            drive(cases, s, |(x, w, b)| {
                gradcheck(
                    |v| F::layer_norm(&v[0], &[3, 4], Some(&v[1]), Some(&v[2]), 1e-5),
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.group_norm", |cases| {
            let s = (
                tensor_of(vec![2, 4, 3, 2], Domain::Any),
                tensor_of(vec![4], Domain::Any),
                tensor_of(vec![4], Domain::Any),
            );
            drive(cases, s, |(x, w, b)| {
                gradcheck(
                    |v| F::group_norm(&v[0], 2, Some(&v[1]), Some(&v[2]), 1e-5),
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.embedding", |cases| {
            let s = (
                tensor_of(vec![5, 3], Domain::Any),
                proptest::collection::vec(0..5i64, 6),
            );
            drive(cases, s, |(w, ids)| {
                let ids = Tensor::from_vec(ids.clone(), [2, 3])?;
                // padding_idx deliberately cuts its row's gradient (PyTorch's rule), so the
                // finite-difference check runs without one; tests/suite/layers_vs_pytorch.rs
                // covers it.
                check1(w, |v| F::embedding(&ids, v, None))
            })
        }),
        GradcheckEntry::new("nn.constant_pad2d", |cases| {
            drive(cases, image(2, 4, 5, Domain::Any), |x| {
                check1(x, |v| F::constant_pad2d(v, [-1, 2, 1, -2], 0.5))
            })
        }),
        GradcheckEntry::new("nn.activations", |cases| {
            drive(cases, tensor_of(vec![3, 4], Domain::Any), |x| {
                check1(x, |v| F::gelu_tanh(v)?.add(&F::silu(v)?))
            })
        }),
        GradcheckEntry::new("nn.activations_piecewise", |cases| {
            // |v| >= 0.2 and every f(v + k) has its kinks at v = 0 or |v| > 2.2: the finite
            // differences never straddle one.
            drive(cases, tensor_of(vec![3, 4], Domain::AwayFromZero), |x| {
                check1(x, |v| {
                    let at = |k: f64| v.add_scalar(k);
                    let terms = [
                        F::hardtanh(&at(-1.5)?, -1.5, 1.5)?,
                        F::hardtanh(&at(1.5)?, -1.5, 1.5)?,
                        F::relu6(v)?,
                        F::relu6(&at(6.0)?)?,
                        F::hardsigmoid(&at(-3.0)?)?,
                        F::hardsigmoid(&at(3.0)?)?,
                        F::hardswish(&at(-3.0)?)?,
                        F::hardswish(&at(3.0)?)?,
                        F::softshrink(&at(-1.2)?, 1.2)?,
                        F::softshrink(&at(1.2)?, 1.2)?,
                        F::hardshrink(&at(-1.2)?, 1.2)?,
                        F::hardshrink(&at(1.2)?, 1.2)?,
                        F::threshold(&at(0.3)?, 0.3, 5.0)?,
                    ];
                    terms
                        .iter()
                        .skip(1)
                        .try_fold(terms[0].clone(), |a, t| a.add(t))
                })
            })
        }),
        GradcheckEntry::new("nn.activations_smooth", |cases| {
            // Away from 0, where SELU's slope jumps.
            drive(cases, tensor_of(vec![3, 4], Domain::AwayFromZero), |x| {
                check1(x, |v| {
                    let terms = [
                        F::mish(v)?,
                        F::selu(v)?,
                        F::celu(v, 1.5)?,
                        F::softsign(v)?,
                        F::tanhshrink(v)?,
                        F::logsigmoid(v)?,
                        F::softmin(v, 1)?,
                    ];
                    let sum = terms
                        .iter()
                        .skip(1)
                        .try_fold(terms[0].clone(), |a, t| a.add(t))?;
                    // GLU halves the last dim: [3, 4] -> [3, 2].
                    sum.sum_all()?.add(&F::glu(v, -1)?.sum_all()?)
                })
            })
        }),
        GradcheckEntry::new("nn.prelu", |cases| {
            let s = (
                tensor_of(vec![2, 3, 2], Domain::AwayFromZero),
                tensor_of(vec![3], Domain::Any),
                tensor_of(vec![1], Domain::Any),
            );
            drive(cases, s, |(x, w, w1)| {
                gradcheck(
                    |v| F::prelu(&v[0], &v[1])?.add(&F::prelu(&v[0], &v[2])?),
                    &[x.clone(), w.clone(), w1.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.pad_modes", |cases| {
            drive(cases, image(2, 4, 5, Domain::Any), |x| {
                check1(x, |v| {
                    let reflect = F::pad(v, &[2, 1, 0, 3], PadMode::Reflect)?;
                    let replicate = F::pad(v, &[3, 0, 1, 2], PadMode::Replicate)?;
                    let circular = F::pad(v, &[4, 1, 2, 3], PadMode::Circular)?;
                    reflect
                        .sum_all()?
                        .add(&replicate.square()?.sum_all()?)?
                        .add(&circular.mul_scalar(0.5)?.sum_all()?)
                })
            })
        }),
        GradcheckEntry::new("nn.instance_norm", |cases| {
            let s = (
                image(3, 3, 4, Domain::Any),
                tensor_of(vec![3], Domain::Any),
                tensor_of(vec![3], Domain::Any),
            );
            drive(cases, s, |(x, w, b)| {
                gradcheck(
                    |v| F::instance_norm(&v[0], Some(&v[1]), Some(&v[2]), 1e-5),
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.resampling", |cases| {
            drive(cases, image(4, 3, 4, Domain::Any), |x| {
                check1(x, |v| {
                    let up = F::upsample_nearest(v, &UpsampleTo::Scale(1.5))?;
                    let sized = F::upsample_nearest(v, &UpsampleTo::Size(vec![5, 3]))?;
                    let linear = Interpolation::Linear {
                        align_corners: false,
                    };
                    let corners = Interpolation::Linear {
                        align_corners: true,
                    };
                    let bilinear = F::interpolate(v, &UpsampleTo::Scale(1.7), linear)?;
                    let aligned = F::interpolate(v, &UpsampleTo::Size(vec![2, 6]), corners)?;
                    let shuffled = F::pixel_shuffle(v, 2)?;
                    let back = F::pixel_unshuffle(&shuffled.square()?, 2)?;
                    up.sum_all()?
                        .add(&sized.square()?.sum_all()?)?
                        .add(&bilinear.square()?.sum_all()?)?
                        .add(&aligned.mul_scalar(0.3)?.sum_all()?)?
                        .add(&back)?
                        .sum_all()
                })
            })
        }),
        GradcheckEntry::new("nn.dropout", |cases| {
            drive(cases, image(3, 2, 2, Domain::Any), |x| {
                // The same masks on every evaluation: reseed before drawing them.
                check1(x, |v| {
                    manual_seed(7);
                    F::dropout(v, 0.3, true)?.add(&F::dropout2d(v, 0.5, true)?)
                })
            })
        }),
        GradcheckEntry::new("nn.padding_valid", |cases| {
            let s = (
                image(2, 5, 5, Domain::Any),
                tensor_of(vec![2, 2, 2, 3], Domain::Any),
            );
            drive(cases, s, |(x, w)| {
                let opts = Conv2dOptions {
                    padding: Padding::Valid,
                    ..Default::default()
                }
                .dilation(2);
                gradcheck(
                    |v| F::conv2d(&v[0], &v[1], None, &opts),
                    &[x.clone(), w.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
    ]
}
