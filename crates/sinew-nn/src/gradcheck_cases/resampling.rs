//! Gradcheck entries of the later layers' functional forms: the 1-d transposed convolution,
//! 1-d adaptive, power-average and unpooling, unfold/fold and local response norm.

use proptest::prelude::*;
use sinew_autograd::gradcheck::gradcheck;
use sinew_autograd::gradcheck::strategy::{CASE_OPTIONS, Domain, check1, drive, tensor_of};

use super::GradcheckEntry;
use super::layers::image;
use crate::functional as F;
use crate::{Conv2dOptions, PoolOptions};

pub(super) fn entries() -> Vec<GradcheckEntry> {
    vec![
        // One or two groups, as nn.conv_transpose2d's entry.
        GradcheckEntry::new("nn.conv_transpose1d", |cases| {
            let s = (
                (1..=2usize).prop_flat_map(|n| tensor_of(vec![n, 2, 4], Domain::Any)),
                tensor_of(vec![2, 3, 3], Domain::Any),
                tensor_of(vec![6], Domain::Any),
                (1..=3usize, 1..=2usize),
            );
            drive(cases, s, |(x, w, b, (stride, groups))| {
                let opts = Conv2dOptions::default()
                    .stride(*stride)
                    .padding(1)
                    .groups(*groups);
                gradcheck(
                    |v| {
                        let bias = v[2].narrow(0, 0, 3 * groups)?;
                        F::conv_transpose1d(&v[0], &v[1], Some(&bias), &opts, *stride - 1)
                    },
                    &[x.clone(), w.clone(), b.clone()],
                    CASE_OPTIONS,
                )
            })
        }),
        GradcheckEntry::new("nn.adaptive_pool1d", |cases| {
            let signal = (1..=2usize).prop_flat_map(|n| tensor_of(vec![n, 2, 7], Domain::Spaced));
            drive(cases, signal, |x| {
                check1(x, |v| {
                    let avg = F::adaptive_avg_pool1d(v, 3)?;
                    let max = F::adaptive_max_pool1d(v, 5)?;
                    avg.sum_all()?.add(&max.square()?.sum_all()?)
                })
            })
        }),
        GradcheckEntry::new("nn.unfold_fold", |cases| {
            drive(cases, image(2, 4, 5, Domain::Any), |x| {
                check1(x, |v| {
                    let opts = crate::FoldOptions::new((2, 3))
                        .padding((1, 0))
                        .stride((1, 2));
                    let cols = F::unfold(v, &opts)?;
                    // Through fold as well: its own backward is unfold.
                    let back = F::fold(&cols.square()?, (4, 5), &opts)?;
                    cols.sum_all()?.add(&back.sum_all()?)
                })
            })
        }),
        GradcheckEntry::new("nn.lp_pool", |cases| {
            drive(cases, image(2, 4, 5, Domain::AwayFromZero), |x| {
                check1(x, |v| {
                    let positive = v.abs()?;
                    let p2 = F::lp_pool2d(v, 2.0, (2, 2), Some((1, 2)), true)?;
                    let p3 = F::lp_pool2d(&positive, 3.0, (2, 3), None, false)?;
                    p2.sum_all()?.add(&p3.square()?.sum_all()?)
                })
            })
        }),
        GradcheckEntry::new("nn.local_response_norm", |cases| {
            drive(cases, image(5, 2, 3, Domain::Any), |x| {
                check1(x, |v| {
                    let odd = F::local_response_norm(v, 3, 0.5, 0.75, 1.0)?;
                    let even_wide = F::local_response_norm(v, 8, 0.9, 0.6, 2.0)?;
                    odd.add(&even_wide.square()?)
                })
            })
        }),
        GradcheckEntry::new("nn.max_unpool2d", |cases| {
            drive(cases, image(2, 4, 6, Domain::Spaced), |x| {
                // Windows that do not overlap: overlapping ones can pick one element twice,
                // whose copies both take a gradient (PyTorch's gather backward too) while the
                // output holds it once.
                check1(x, |v| {
                    let (y, indices) = F::max_pool2d_with_indices(v, &PoolOptions::new(2))?;
                    let unpool = crate::MaxUnpool2d::new((2, 2));
                    F::max_unpool2d(&y.square()?, &indices, &unpool, Some((5, 7)))
                })
            })
        }),
    ]
}
