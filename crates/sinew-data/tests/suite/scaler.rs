//! Scalers: statistics against a naive f64 pass, transform/inverse round trips, min-max.

use crate::common;

use sinew_data::rng::sample_rng;
use sinew_data::transforms::Transform;
use sinew_data::{
    Dataset, Input, MinMaxScaler, Sample, ScaleAxis, StandardScaler, Statistics, Target, VecDataset,
};

fn naive(values: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let n = values.len() as f64;
    let slots = values[0].len();
    let mean: Vec<f64> = (0..slots)
        .map(|s| values.iter().map(|v| v[s]).sum::<f64>() / n)
        .collect();
    let var = (0..slots)
        .map(|s| values.iter().map(|v| (v[s] - mean[s]).powi(2)).sum::<f64>() / n)
        .collect();
    (mean, var)
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn per_pixel_and_per_channel_match_naive_f64() {
    // 600 images (more than two parallel chunks) of 3×4×5 u8 pixels.
    let samples = common::rgb_samples(600, 4, 5);
    let values: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| {
            s.input
                .to_f32_vec()
                .unwrap()
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect();
    let ds = VecDataset::new(samples);
    let per_pixel = Statistics::compute(&ds, ScaleAxis::Element).unwrap();
    let (mean, var) = naive(&values);
    assert_eq!(per_pixel.count, 600);
    close(&per_pixel.mean, &mean, 1e-12);
    close(&per_pixel.var, &var, 1e-10);
    let pooled: Vec<Vec<f64>> = values
        .iter()
        .flat_map(|v| (0..20).map(move |p| (0..3).map(|c| v[c * 20 + p]).collect::<Vec<_>>()))
        .collect();
    let per_channel = Statistics::compute(&ds, ScaleAxis::Channel).unwrap();
    let (mean, var) = naive(&pooled);
    assert_eq!(per_channel.count, 600 * 20);
    close(&per_channel.mean, &mean, 1e-12);
    close(&per_channel.var, &var, 1e-10);
    let min: Vec<f64> = (0..3)
        .map(|c| pooled.iter().map(|v| v[c]).fold(f64::MAX, f64::min))
        .collect();
    assert_eq!(per_channel.min, min);
}

fn table() -> VecDataset<Sample> {
    let rows = [
        [1.0, 10.0, 5.0],
        [2.0, 30.0, 5.0],
        [4.0, 20.0, 5.0],
        [5.0, 60.0, 5.0],
    ];
    VecDataset::new(
        rows.iter()
            .map(|r| Sample {
                input: Input::Features(r.to_vec()),
                target: Target::Value(0.0),
            })
            .collect(),
    )
}

#[test]
fn standard_scaler_per_feature() {
    let ds = table();
    let scaler = StandardScaler::fit(&ds, ScaleAxis::Element).unwrap();
    assert_eq!(scaler.mean(), &[3.0, 30.0, 5.0]);
    // Population std of [1, 2, 4, 5] is sqrt(2.5); a constant feature gets std 1.
    assert!((scaler.std()[0] - 2.5f32.sqrt()).abs() < 1e-6);
    assert_eq!(scaler.std()[2], 1.0);
    let mut scaled: Vec<Vec<f32>> = Vec::new();
    for i in 0..ds.len() {
        let mut v = ds.get(i).unwrap().input.to_f32_vec().unwrap();
        scaler.transform(&mut v).unwrap();
        scaled.push(v.clone());
        scaler.inverse(&mut v).unwrap();
        for (back, orig) in v.iter().zip(ds.get(i).unwrap().input.to_f32_vec().unwrap()) {
            assert!((back - orig).abs() <= 1e-6 * orig.abs(), "{back} vs {orig}");
        }
    }
    for f in 0..2 {
        let m: f32 = scaled.iter().map(|v| v[f]).sum::<f32>() / 4.0;
        let var: f32 = scaled.iter().map(|v| (v[f] - m).powi(2)).sum::<f32>() / 4.0;
        assert!(m.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{m} {var}");
    }
    assert!(scaler.transform(&mut [1.0, 2.0]).is_err());
    let out = scaler
        .apply(ds.get(0).unwrap(), &mut sample_rng(0, 0, 0))
        .unwrap();
    let Input::Features(f) = out.input else {
        panic!("features expected")
    };
    assert!((f[1] + 20.0 / 350f32.sqrt()).abs() < 1e-6, "{}", f[1]);
}

#[test]
fn min_max_scaler_maps_onto_the_range() {
    let ds = table();
    let scaler = MinMaxScaler::fit(&ds, ScaleAxis::Element, (-1.0, 1.0)).unwrap();
    assert_eq!(scaler.data_min(), &[1.0, 10.0, 5.0]);
    let mut v = vec![5.0, 10.0, 5.0];
    scaler.transform(&mut v).unwrap();
    assert_eq!(v, vec![1.0, -1.0, -1.0]);
    scaler.inverse(&mut v).unwrap();
    assert_eq!(v, vec![5.0, 10.0, 5.0]);
    let images = VecDataset::new(common::rgb_samples(10, 2, 2));
    let per_channel = MinMaxScaler::fit(&images, ScaleAxis::Channel, (0.0, 1.0)).unwrap();
    let out = per_channel
        .apply(images.get(3).unwrap(), &mut sample_rng(0, 0, 0))
        .unwrap();
    let Input::F32(img) = out.input else {
        panic!("f32 image expected")
    };
    assert!(img.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(Statistics::compute(&table(), ScaleAxis::Channel).is_err());
}
