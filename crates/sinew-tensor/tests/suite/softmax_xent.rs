//! The fused softmax cross-entropy on the CPU backend (`Tensor::softmax_xent_rows` and its
//! backward): the formula, computed directly in f64; the totals and the mean's gradient; bad
//! operands; and f16/bf16 logits: f32 statistics, totals and row gradients, equal bit for bit to
//! those of the logits widened to f32, and a gradient of the logits' dtype equal to the widened
//! logits' gradient rounded to it.

use sinew_tensor::{
    DType, Device, Error, Generator, Result, SoftmaxXentOptions, Tensor, xent_stats_dtype,
};

fn options(ignore_index: i64, label_smoothing: f64) -> SoftmaxXentOptions {
    SoftmaxXentOptions {
        ignore_index,
        label_smoothing,
    }
}

/// Loss, row weight and log-sum-exp of every row, and the gradient for row gradients `g`,
/// computed directly from the formula in f64.
fn reference(
    x: &[f64],
    t: &[i64],
    w: &[f64],
    g: &[f64],
    o: SoftmaxXentOptions,
) -> (Vec<[f64; 3]>, Vec<f64>) {
    let c = w.len();
    let e = o.label_smoothing;
    let total: f64 = w.iter().sum();
    let mut stats = vec![];
    let mut dx = vec![0.0; x.len()];
    for (i, row) in x.chunks(c).enumerate() {
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        let valid = t[i] != o.ignore_index;
        if !valid {
            stats.push([0.0, 0.0, lse]);
            continue;
        }
        let k = t[i] as usize;
        let smooth: f64 = (0..c).map(|j| w[j] * (lse - row[j])).sum();
        let loss = (1.0 - e) * w[k] * (lse - row[k]) + e / c as f64 * smooth;
        stats.push([loss, w[k], lse]);
        for j in 0..c {
            let p = (row[j] - lse).exp();
            let hot = if j == k { 1.0 } else { 0.0 };
            dx[i * c + j] =
                g[i] * ((1.0 - e) * w[k] * (p - hot) + e / c as f64 * (total * p - w[j]));
        }
    }
    (stats, dx)
}

#[test]
fn rows_and_gradient_match_the_formula() {
    let cpu = Device::cpu();
    let mut rng = Generator::new(11);
    let (m, c) = (7, 5);
    let t = [0i64, 4, -100, 2, 1, 3, 4];
    for dtype in [DType::F32, DType::F64] {
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        // Logits as a transposed view, to go through the contiguous copy.
        let x = rng
            .randn([c, m], dtype, &cpu)
            .unwrap()
            .mul_scalar(3.0)
            .unwrap()
            .t()
            .unwrap();
        let w = rng.rand([c], dtype, &cpu).unwrap().add_scalar(0.5).unwrap();
        let g = rng.randn([m], dtype, &cpu).unwrap();
        let target = Tensor::from_vec(t.to_vec(), [m]).unwrap();
        let (xv, wv, gv) = (
            x.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
            w.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
            g.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
        );
        for (weighted, e) in [(false, 0.0), (true, 0.0), (false, 0.2), (true, 0.3)] {
            let o = options(-100, e);
            let weight = weighted.then_some(&w);
            let ones = vec![1.0; c];
            let (want, want_dx) = reference(&xv, &t, if weighted { &wv } else { &ones }, &gv, o);
            let stats = x.softmax_xent_rows(&target, weight, o).unwrap();
            let got = stats.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            for (i, row) in want.iter().enumerate() {
                let lse = got[2 * m + i] + got[3 * m + i];
                for (k, &v) in row.iter().enumerate() {
                    let got = if k == 2 { lse } else { got[k * m + i] };
                    let diff = (got - v).abs();
                    assert!(
                        diff <= tol * (1.0 + v.abs()),
                        "{dtype} row {i} stat {k}: {got} vs {v}"
                    );
                }
            }
            let dx = x
                .softmax_xent_rows_backward(&target, weight, &stats, &g, o)
                .unwrap();
            let got_dx = dx.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            for (a, b) in got_dx.iter().zip(&want_dx) {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{dtype} dx {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn a_target_out_of_range_is_an_error_naming_it() {
    let cpu = Device::cpu();
    let x = Tensor::zeros([2, 3], DType::F32, &cpu).unwrap();
    let target = Tensor::from_vec(vec![1i64, 3], [2]).unwrap();
    let err = x
        .softmax_xent_rows(&target, None, options(-100, 0.0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IndexOutOfBounds {
                index: 3,
                size: 3,
                ..
            }
        ),
        "{err}"
    );
    let bad_smoothing = x.softmax_xent_rows(&target, None, options(-100, 1.5));
    assert!(bad_smoothing.is_err());
    let wrong_weight = Tensor::ones([2], DType::F32, &cpu).unwrap();
    let target = Tensor::from_vec(vec![1i64, 2], [2]).unwrap();
    assert!(
        x.softmax_xent_rows(&target, Some(&wrong_weight), options(-100, 0.0))
            .is_err()
    );
    let tracked = x.clone().requires_grad_();
    assert!(
        tracked
            .softmax_xent_rows(&target, None, options(-100, 0.0))
            .is_err()
    );
}

/// The totals are the f64 sums of the stored row losses and weights and their ratio, and
/// the mean's gradient is the row gradient `grad / sum w_t` (divided in the logits' dtype)
/// for every row, bit for bit.
#[test]
fn totals_and_the_means_gradient() {
    let cpu = Device::cpu();
    let mut rng = Generator::new(12);
    let (m, c) = (9, 4);
    let target = Tensor::from_vec(vec![0i64, 3, -100, 2, 1, 3, 0, -100, 1], [m]).unwrap();
    for dtype in [DType::F32, DType::F64] {
        let x = rng
            .randn([m, c], dtype, &cpu)
            .unwrap()
            .mul_scalar(2.0)
            .unwrap();
        let w = rng.rand([c], dtype, &cpu).unwrap().add_scalar(0.5).unwrap();
        let o = options(-100, 0.1);
        let (stats, totals) = x.softmax_xent_totals(&target, Some(&w), o).unwrap();
        let rows = stats.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let (loss, weight): (f64, f64) = (rows[..m].iter().sum(), rows[m..2 * m].iter().sum());
        let narrow = |v: f64| {
            Tensor::from_vec(vec![v], [1])
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        };
        let want = Tensor::cat(&[narrow(loss), narrow(weight), narrow(loss / weight)], 0).unwrap();
        assert_eq!(
            totals.to_vec_f64().unwrap(),
            want.to_vec_f64().unwrap(),
            "{dtype}"
        );
        assert!(loss > 0.0 && weight > 1.0, "{dtype}: rows counted");
        let dmean = rng.randn([], dtype, &cpu).unwrap();
        let got = x
            .softmax_xent_mean_backward(&target, Some(&w), (&stats, &totals), &dmean, o)
            .unwrap();
        let divisor = totals.narrow(0, 1, 1).unwrap();
        let row_grad = dmean
            .reshape([1])
            .unwrap()
            .div(&divisor)
            .unwrap()
            .expand([m])
            .unwrap();
        let want = x
            .softmax_xent_rows_backward(&target, Some(&w), &stats, &row_grad, o)
            .unwrap();
        assert_eq!(
            got.to_vec_f64().unwrap(),
            want.to_vec_f64().unwrap(),
            "{dtype}"
        );
        let bad = x.softmax_xent_mean_backward(&target, None, (&stats, &stats), &dmean, o);
        assert!(bad.is_err(), "{dtype}: totals must be [3]");
    }
}

const OPTIONS: [SoftmaxXentOptions; 2] = [
    SoftmaxXentOptions {
        ignore_index: -100,
        label_smoothing: 0.0,
    },
    SoftmaxXentOptions {
        ignore_index: 2,
        label_smoothing: 0.15,
    },
];

fn bits(t: &Tensor) -> Result<Vec<u64>> {
    Ok(t.to_dtype(DType::F64)?
        .to_vec::<f64>()?
        .iter()
        .map(|v| v.to_bits())
        .collect())
}

#[test]
fn the_stats_dtype_is_f32_for_half_logits() {
    assert_eq!(xent_stats_dtype(DType::F16), DType::F32);
    assert_eq!(xent_stats_dtype(DType::BF16), DType::F32);
    assert_eq!(xent_stats_dtype(DType::F32), DType::F32);
    assert_eq!(xent_stats_dtype(DType::F64), DType::F64);
}

#[test]
fn half_logits_give_the_widened_logits_values() -> Result<()> {
    let cpu = Device::cpu();
    let mut rng = Generator::new(21);
    let (m, c) = (37, 11);
    let target = Tensor::from_vec((0..m as i64).map(|i| (i * 7) % c as i64).collect(), [m])?;
    let weight = rng.rand([c], DType::F32, &cpu)?.add_scalar(0.5)?;
    for dtype in [DType::F16, DType::BF16] {
        let x = rng
            .randn([m, c], DType::F32, &cpu)?
            .mul_scalar(4.0)?
            .to_dtype(dtype)?;
        let wide = x.to_dtype(DType::F32)?;
        for o in OPTIONS {
            for w in [None, Some(&weight)] {
                let what = format!("{dtype} {o:?} weighted={}", w.is_some());
                let (stats, totals) = x.softmax_xent_totals(&target, w, o)?;
                let (want_stats, want_totals) = wide.softmax_xent_totals(&target, w, o)?;
                assert_eq!(stats.dtype(), DType::F32, "{what}");
                assert_eq!(bits(&stats)?, bits(&want_stats)?, "{what}: rows");
                assert_eq!(bits(&totals)?, bits(&want_totals)?, "{what}: totals");
                let g = rng.randn([m], DType::F32, &cpu)?;
                let dx = x.softmax_xent_rows_backward(&target, w, &stats, &g, o)?;
                let want = wide
                    .softmax_xent_rows_backward(&target, w, &stats, &g, o)?
                    .to_dtype(dtype)?;
                assert_eq!(dx.dtype(), dtype, "{what}");
                assert_eq!(bits(&dx)?, bits(&want)?, "{what}: gradient");
                let dmean = rng.randn([], DType::F32, &cpu)?;
                let dx = x.softmax_xent_mean_backward(&target, w, (&stats, &totals), &dmean, o)?;
                let want = wide
                    .softmax_xent_mean_backward(&target, w, (&stats, &totals), &dmean, o)?
                    .to_dtype(dtype)?;
                assert_eq!(bits(&dx)?, bits(&want)?, "{what}: mean's gradient");
                assert!(dx.abs()?.sum_all()?.to_vec_f64()?[0] > 0.0, "{what}");
            }
        }
    }
    Ok(())
}

/// Weights, statistics and gradients must be f32 for half logits, not the logits' dtype.
#[test]
fn half_logits_take_f32_operands_only() -> Result<()> {
    let cpu = Device::cpu();
    let x = Tensor::zeros([3, 4], DType::F16, &cpu)?;
    let target = Tensor::from_vec(vec![0i64, 1, 3], [3])?;
    let o = OPTIONS[0];
    let half_weight = Tensor::ones([4], DType::F16, &cpu)?;
    let err = x
        .softmax_xent_totals(&target, Some(&half_weight), o)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DTypeMismatch {
                lhs: DType::F32,
                rhs: DType::F16,
                ..
            }
        ),
        "{err}"
    );
    let (stats, _) = x.softmax_xent_totals(&target, None, o)?;
    let half_grad = Tensor::ones([3], DType::F16, &cpu)?;
    assert!(
        x.softmax_xent_rows_backward(&target, None, &stats, &half_grad, o)
            .is_err()
    );
    let half_stats = stats.to_dtype(DType::F16)?;
    let grad = Tensor::ones([3], DType::F32, &cpu)?;
    assert!(
        x.softmax_xent_rows_backward(&target, None, &half_stats, &grad, o)
            .is_err()
    );
    Ok(())
}
