//! Initialisers: PyTorch's gain table and default bounds (`tests/reference/init.json`) and the
//! statistics of every distribution.

mod common;

use sinew_nn::init::{self, FanMode};
use sinew_nn::{Conv2d, Linear};
use sinew_tensor::{DType, Device, Result, Tensor, manual_seed};

/// The number after `"key":` in a flat part of the reference JSON.
fn json_number(text: &str, key: &str) -> f64 {
    let at = text
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} missing"));
    let rest = &text[at + key.len() + 3..];
    let end = rest.find([',', '\n', '}']).unwrap();
    rest[..end].trim().parse().unwrap()
}

#[test]
fn calculate_gain_matches_pytorchs_table_and_rejects_unknown_names() -> Result<()> {
    let text = std::fs::read_to_string(common::reference_path("init.json")).unwrap();
    let gains = &text[text.find("\"gain\"").unwrap()..];
    for (name, param) in [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("selu", None),
    ] {
        let want = json_number(gains, name);
        assert!(
            (init::calculate_gain(name, param)? - want).abs() < 1e-12,
            "{name}"
        );
    }
    let want = json_number(gains, "leaky_relu_0.2");
    assert!((init::calculate_gain("leaky_relu", Some(0.2))? - want).abs() < 1e-12);
    let err = init::calculate_gain("swish", None).unwrap_err().to_string();
    assert!(err.contains("swish"), "{err}");
    Ok(())
}

fn stats(t: &Tensor) -> Result<(f64, f64, f64)> {
    let v = t.to_dtype(DType::F64)?.to_vec_f64()?;
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let max_abs = v.iter().fold(0f64, |m, x| m.max(x.abs()));
    Ok((mean, var.sqrt(), max_abs))
}

#[test]
fn default_layer_init_uses_pytorchs_bounds() -> Result<()> {
    let text = std::fs::read_to_string(common::reference_path("init.json")).unwrap();
    let lin = &text[text.find("\"linear_20_30\"").unwrap()..];
    let conv = &text[text.find("\"conv2d_3_8_5\"").unwrap()..];
    // Like the reference: the largest |value| over 20 fresh layers approaches the bound.
    let mut seen = [0f64; 4];
    for _ in 0..20 {
        let l = Linear::new(20, 30)?;
        let c = Conv2d::new(3, 8, 5)?;
        let values = [
            l.weight.value(),
            l.bias.as_ref().unwrap().value(),
            c.weight.value(),
            c.bias.as_ref().unwrap().value(),
        ];
        for (s, t) in seen.iter_mut().zip(values) {
            *s = s.max(stats(&t)?.2);
        }
    }
    let bounds = [
        json_number(lin, "weight_bound"),
        json_number(lin, "bias_bound"),
        json_number(conv, "weight_bound"),
        json_number(conv, "bias_bound"),
    ];
    for (what, (max_abs, bound)) in ["linear weight", "linear bias", "conv weight", "conv bias"]
        .iter()
        .zip(seen.into_iter().zip(bounds))
    {
        assert!(
            max_abs <= bound && max_abs > 0.95 * bound,
            "{what}: max |w| {max_abs}, bound {bound}"
        );
    }
    Ok(())
}

#[test]
fn distributions_have_the_documented_statistics() -> Result<()> {
    manual_seed(11);
    let cpu = Device::cpu();
    let w = Tensor::zeros([256, 128, 3, 3], DType::F32, &cpu)?; // fan_in 1152, fan_out 2304
    let check = |what: &str, t: &Tensor, std: f64, bound: Option<f64>| -> Result<()> {
        let (mean, s, max_abs) = stats(t)?;
        assert!(
            mean.abs() < 0.02 * std.max(1e-3) + 1e-4,
            "{what}: mean {mean}"
        );
        assert!((s / std - 1.0).abs() < 0.02, "{what}: std {s}, want {std}");
        if let Some(b) = bound {
            assert!(max_abs <= b + 1e-7, "{what}: {max_abs} beyond {b}");
        }
        Ok(())
    };
    init::kaiming_uniform_(&w, 0.0, FanMode::FanIn, "relu")?;
    let std = (2.0f64 / 1152.0).sqrt();
    check("kaiming_uniform", &w, std, Some(3f64.sqrt() * std))?;
    init::kaiming_normal_(&w, 0.0, FanMode::FanOut, "relu")?;
    check("kaiming_normal fan_out", &w, (2.0f64 / 2304.0).sqrt(), None)?;
    init::xavier_uniform_(&w, 1.0)?;
    let std = (2.0f64 / (1152.0 + 2304.0)).sqrt();
    check("xavier_uniform", &w, std, Some(3f64.sqrt() * std))?;
    init::xavier_normal_(&w, 2.0)?;
    check("xavier_normal", &w, 2.0 * std, None)?;
    init::he_normal_truncated_(&w)?;
    let std = (2.0f64 / 1152.0).sqrt();
    check(
        "he_normal (Keras, truncated)",
        &w,
        std,
        Some(2.0 * std / 0.879_625_661_034_239_8),
    )?;
    // PyTorch's trunc_normal_ bounds are absolute: N(0, 1) cut to [-0.5, 0.5] has std
    // sqrt(1 - phi(0.5) / (Phi(0.5) - Phi(-0.5))) = 0.28388.
    init::trunc_normal_(&w, 0.0, 1.0, -0.5, 0.5)?;
    check("trunc_normal", &w, 0.283_882_3, Some(0.5))?;
    init::constant_(&w, 0.25)?;
    assert!(w.to_vec::<f32>()?.iter().all(|&v| v == 0.25));
    Ok(())
}

#[test]
fn orthogonal_rows_or_columns_are_orthonormal_times_gain() -> Result<()> {
    for shape in [[6usize, 4], [4, 6]] {
        let w = Tensor::zeros(shape, DType::F64, &Device::cpu())?;
        init::orthogonal_(&w, 2.0)?;
        let gram = if shape[0] >= shape[1] {
            w.t()?.matmul(&w)?
        } else {
            w.matmul(&w.t()?)?
        };
        let k = shape[0].min(shape[1]);
        let g = gram.to_vec::<f64>()?;
        for i in 0..k {
            for j in 0..k {
                let want = if i == j { 4.0 } else { 0.0 };
                assert!(
                    (g[i * k + j] - want).abs() < 1e-9,
                    "{shape:?} gram[{i},{j}] = {}",
                    g[i * k + j]
                );
            }
        }
    }
    Ok(())
}

#[test]
fn fans_of_a_vector_are_an_error() {
    let v = Tensor::zeros([5], DType::F32, &Device::cpu()).unwrap();
    assert!(init::xavier_uniform_(&v, 1.0).is_err());
}
