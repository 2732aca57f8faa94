//! Every layer against PyTorch (values from `tests/reference/layers_ref.py`): output, input
//! gradient, parameter gradients and buffers after the forward, in training or eval mode.

use crate::common;

use common::{assert_no_failures, get, mismatch, reference};
use sinew_nn::*;
use sinew_tensor::{Result, Tensor};

/// Max pooling then `MaxUnpool2d` at its indices (the reference's `PoolUnpool`).
struct PoolUnpool {
    pool: PoolOptions,
    unpool: MaxUnpool2d,
    size: Option<(usize, usize)>,
}

impl PoolUnpool {
    fn new(k: usize, stride: usize, padding: usize, size: Option<(usize, usize)>) -> Self {
        PoolUnpool {
            pool: PoolOptions::new(k).stride(stride).padding(padding),
            unpool: MaxUnpool2d {
                stride: Some((stride, stride)),
                padding: (padding, padding),
                ..MaxUnpool2d::new((k, k))
            },
            size,
        }
    }
}

impl Module for PoolUnpool {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (y, indices) = functional::max_pool2d_with_indices(x, &self.pool)?;
        self.unpool.forward_with(&y, &indices, self.size)
    }
}

fn build(case: &str) -> Result<Box<dyn Module>> {
    let conv_opts = Conv2dOptions::default();
    let pool = PoolOptions::new;
    let linear = |align_corners| Interpolation::Linear { align_corners };
    // `C_unbatched`: case C's module on one sample without its batch dim.
    Ok(match case.strip_suffix("_unbatched").unwrap_or(case) {
        "linear" => Box::new(Linear::new(5, 3)?),
        "linear_nobias" => Box::new(Linear::with_config(LinearConfig {
            bias: false,
            ..LinearConfig::new(5, 3)
        })?),
        "conv2d" => Box::new(Conv2d::with_options(3, 4, (3, 3), conv_opts.padding(1))?),
        "conv2d_grouped" => Box::new(Conv2d::with_options(
            4,
            6,
            (3, 3),
            conv_opts.stride(2).padding(2).dilation(2).groups(2),
        )?),
        "conv2d_same" => Box::new(Conv2d::with_options(3, 4, (3, 4), conv_opts.same())?),
        "conv1d" => Box::new(Conv1d::new(3, 4, 3, conv_opts.stride(2).padding(1))?),
        "conv_transpose2d" => Box::new(ConvTranspose2d::new(
            3,
            4,
            3,
            conv_opts.stride(2).padding(1),
            1,
        )?),
        "conv_transpose1d" => Box::new(ConvTranspose1d::new(
            3,
            4,
            3,
            conv_opts.stride(2).padding(1),
            1,
        )?),
        "conv_transpose1d_dilated" => Box::new(ConvTranspose1d::new(
            2,
            3,
            2,
            conv_opts.stride(3).dilation(2).bias(false),
            0,
        )?),
        "conv_transpose2d_grouped" => Box::new(ConvTranspose2d::new(
            4,
            6,
            3,
            conv_opts.stride(2).padding(1).groups(2),
            1,
        )?),
        "conv_transpose1d_grouped" => Box::new(ConvTranspose1d::new(
            6,
            3,
            2,
            conv_opts.stride(3).dilation(2).groups(3).bias(false),
            0,
        )?),
        "maxpool2d" => Box::new(MaxPool2d::new(2)),
        "maxpool2d_ceil" => Box::new(MaxPool2d::with_options(pool(3).stride(2).ceil_mode(true))),
        "maxpool1d" => Box::new(MaxPool1d::new(3, Some(2), 1)),
        "avgpool2d" => Box::new(AvgPool2d::with_options(pool(3).stride(2).padding(1))),
        "avgpool2d_nopad" => Box::new(AvgPool2d::with_options(
            pool(3).stride(2).padding(1).count_include_pad(false),
        )),
        "avgpool2d_ceil" => Box::new(AvgPool2d::with_options(pool(3).stride(2).ceil_mode(true))),
        "avgpool1d" => Box::new(AvgPool1d::new(2, None, 0)),
        "adaptive_avg" => Box::new(AdaptiveAvgPool2d::new((2, 3))),
        "adaptive_max" => Box::new(AdaptiveMaxPool2d::new((3, 3))),
        "softmax2d" => Box::new(Softmax2d),
        "max_unpool2d" => Box::new(PoolUnpool::new(2, 2, 0, None)),
        "max_unpool2d_padded" => Box::new(PoolUnpool::new(3, 2, 1, Some((6, 5)))),
        "lppool2d" => Box::new(LPPool2d {
            stride: Some((1, 2)),
            ..LPPool2d::new(2.0, (2, 3))
        }),
        "lppool2d_p3_ceil" => Box::new(LPPool2d {
            ceil_mode: true,
            ..LPPool2d::new(3.0, (2, 2))
        }),
        "lppool1d" => Box::new(LPPool1d {
            stride: Some(2),
            ..LPPool1d::new(1.5, 3)
        }),
        "adaptive_avg1d" => Box::new(AdaptiveAvgPool1d::new(3)),
        "adaptive_max1d" => Box::new(AdaptiveMaxPool1d::new(5)),
        "lrn" => Box::new(LocalResponseNorm::new(3)),
        "lrn_options" => Box::new(LocalResponseNorm {
            alpha: 0.5,
            beta: 0.6,
            k: 2.0,
            ..LocalResponseNorm::new(4)
        }),
        "lrn_wide" => Box::new(LocalResponseNorm {
            alpha: 0.8,
            beta: 0.75,
            k: 0.5,
            ..LocalResponseNorm::new(9)
        }),
        "batchnorm2d" | "batchnorm2d_eval" => Box::new(BatchNorm2d::new(3)?),
        "batchnorm1d" | "batchnorm1d_3d" => Box::new(BatchNorm1d::new(4)?),
        "batchnorm2d_cumulative" => Box::new(BatchNorm2d::with_config(BatchNormConfig {
            momentum: None,
            ..BatchNormConfig::new(3)
        })?),
        "batchnorm2d_noaffine" => Box::new(BatchNorm2d::with_config(BatchNormConfig {
            affine: false,
            ..BatchNormConfig::new(3)
        })?),
        "layernorm" => Box::new(LayerNorm::new(&[4, 5])?),
        "groupnorm" => Box::new(GroupNorm::new(2, 4)?),
        "embedding" => Box::new(Embedding::new(10, 4, Some(0))?),
        "relu" => Box::new(ReLU),
        "leaky_relu" => Box::new(LeakyReLU {
            negative_slope: 0.1,
        }),
        "elu" => Box::new(ELU::default()),
        "gelu" => Box::new(GELU::default()),
        "gelu_tanh" => Box::new(GELU {
            tanh_approximation: true,
        }),
        "silu" => Box::new(SiLU),
        "sigmoid" => Box::new(Sigmoid),
        "tanh" => Box::new(Tanh),
        "softmax" => Box::new(Softmax { dim: 1 }),
        "log_softmax" => Box::new(LogSoftmax { dim: 1 }),
        "softplus" => Box::new(Softplus {
            beta: 2.0,
            threshold: 10.0,
        }),
        "hardtanh" => Box::new(Hardtanh::default()),
        "hardtanh_bounds" => Box::new(Hardtanh {
            min_val: -1.5,
            max_val: 2.0,
        }),
        "relu6" => Box::new(ReLU6),
        "hardsigmoid" => Box::new(Hardsigmoid),
        "hardswish" => Box::new(Hardswish),
        "softshrink" => Box::new(Softshrink::default()),
        "hardshrink" => Box::new(Hardshrink { lambd: 1.0 }),
        "threshold" => Box::new(Threshold {
            threshold: 0.1,
            value: 20.0,
        }),
        "mish" => Box::new(Mish),
        "selu" => Box::new(SELU),
        "celu" => Box::new(CELU { alpha: 1.5 }),
        "softsign" => Box::new(Softsign),
        "tanhshrink" => Box::new(Tanhshrink),
        "logsigmoid" => Box::new(LogSigmoid),
        "glu" => Box::new(GLU::default()),
        "glu_dim0" => Box::new(GLU { dim: 0 }),
        "softmin" => Box::new(Softmin { dim: 1 }),
        "prelu" => Box::new(PReLU::new(1, 0.25)?),
        "prelu_channels" => Box::new(PReLU::new(3, 0.25)?),
        "reflection_pad2d" => Box::new(ReflectionPad2d::new([1, 2, 2, 0])),
        "reflection_pad1d" => Box::new(ReflectionPad1d::new([2, 1])),
        "replication_pad2d" => Box::new(ReplicationPad2d::new([3, 1, 0, 2])),
        "replication_pad1d" => Box::new(ReplicationPad1d::new([1, 3])),
        "circular_pad2d" => Box::new(CircularPad2d::new([4, 1, 2, 3])),
        "circular_pad1d" => Box::new(CircularPad1d::new([2, 0])),
        "instancenorm2d" => Box::new(InstanceNorm2d::new(3, false)?),
        "instancenorm2d_affine" => Box::new(InstanceNorm2d::new(3, true)?),
        "instancenorm1d_affine" => Box::new(InstanceNorm1d::new(4, true)?),
        "unflatten" => Box::new(Unflatten::new(1, &[2, 3])),
        "upsample_nearest2d" => Box::new(Upsample::scale(2.0)),
        "upsample_nearest_frac" => Box::new(Upsample::scale(1.5)),
        "upsample_nearest_size" => Box::new(Upsample::size(&[5, 3])),
        "upsample_nearest1d" => Box::new(Upsample::scale(3.0)),
        "upsample_bilinear" => Box::new(Upsample::scale(2.0).mode(linear(false))),
        "upsample_bilinear_corners" => Box::new(Upsample::size(&[5, 7]).mode(linear(true))),
        "upsample_bilinear_down" => Box::new(Upsample::scale(0.6).mode(linear(false))),
        "upsample_linear1d" => Box::new(Upsample::scale(1.5).mode(linear(false))),
        "pixel_shuffle" => Box::new(PixelShuffle { upscale_factor: 2 }),
        "pixel_unshuffle" => Box::new(PixelUnshuffle {
            downscale_factor: 2,
        }),
        "unfold" => Box::new(Unfold {
            options: FoldOptions::new((2, 3))
                .dilation((1, 2))
                .padding((1, 1))
                .stride((2, 1)),
        }),
        "fold" => Box::new(Fold::new((4, 5), (2, 2))),
        "fold_strided" => Box::new(Fold {
            output_size: (5, 5),
            options: FoldOptions::new((3, 3)).padding((1, 1)).stride((2, 2)),
        }),
        "flatten" => Box::new(Flatten::new()),
        "zeropad2d" => Box::new(ZeroPad2d::new([1, 2, 0, 1])),
        "constantpad_crop" => Box::new(ConstantPad2d::new([-1, 1, 2, -1], 0.5)),
        other => panic!("no Sinew module for reference case {other}"),
    })
}

/// Runs one case, returning its mismatches.
fn check_case(refs: &sinew_nn::StateDict, case: &str, checked: &mut usize) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let model = build(case)?;
    let params = refs.select(&format!("{case}.p."));
    model.load_state_dict(&params, true)?;
    if case.ends_with("_eval") {
        model.eval();
    }
    let x = get(refs, &format!("{case}.x"));
    let x = if x.dtype().is_float() {
        x.requires_grad_()
    } else {
        x
    };
    let y = model.forward(&x)?;
    let (tol, rtol) = (2e-5, 2e-4);
    let mut check = |what: String, got: Option<Tensor>| {
        if let Some(want) = refs.get(&what) {
            *checked += 1;
            match got {
                Some(g) => failures.extend(mismatch(&what, &g, want, tol, rtol)),
                None => failures.push(format!("{what}: Sinew has no value")),
            }
        }
    };
    check(format!("{case}.y"), Some(y.clone()));
    if let Some(gy) = refs.get(&format!("{case}.gy")) {
        y.mul(gy)?.sum_all()?.backward()?;
        check(format!("{case}.gx"), x.grad());
        for (name, p) in model.named_parameters() {
            check(format!("{case}.g.{name}"), p.grad());
        }
    }
    if let Some(x2) = refs.get(&format!("{case}.x2")) {
        let y2 = sinew_tensor::with_no_grad(|| model.forward(x2))?;
        check(format!("{case}.y2"), Some(y2));
    }
    for (name, b) in model.named_buffers() {
        check(format!("{case}.after.{name}"), Some(b.value()));
    }
    Ok(failures)
}

#[test]
fn every_layer_matches_pytorch_in_values_gradients_and_buffers() {
    let refs = reference("layers.safetensors");
    let mut cases: Vec<String> = refs
        .keys()
        .filter_map(|k| k.strip_suffix(".x").map(String::from))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 114,
        "expected every reference case, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &cases {
        match check_case(&refs, case, &mut checked) {
            Ok(f) => failures.extend(f),
            Err(e) => failures.push(format!("{case}: error {e}")),
        }
    }
    assert_no_failures(&failures);
    // Every reference tensor but the inputs, upstream gradients and parameters was compared.
    let expected = refs
        .keys()
        .filter(|k| {
            [".y", ".gx", ".y2"].iter().any(|s| k.ends_with(s))
                || k.contains(".g.")
                || k.contains(".after.")
        })
        .count();
    assert_eq!(checked, expected, "every reference output was compared");
    eprintln!(
        "compared {checked} reference tensors over {} cases",
        cases.len()
    );
}

#[test]
fn the_embedding_padding_row_gets_no_gradient() -> Result<()> {
    let refs = reference("layers.safetensors");
    let emb = Embedding::new(10, 4, Some(0))?;
    emb.load_state_dict(&refs.select("embedding.p."), true)?;
    let ids = get(&refs, "embedding.x");
    emb.forward(&ids)?
        .mul(&get(&refs, "embedding.gy"))?
        .sum_all()?
        .backward()?;
    let g = emb
        .weight
        .grad()
        .unwrap()
        .narrow(0, 0, 1)?
        .to_vec::<f32>()?;
    assert_eq!(g, vec![0.0; 4]);
    Ok(())
}

#[test]
fn unbatched_max_pool_indices_are_the_batch_of_ones() -> Result<()> {
    let refs = reference("layers.safetensors");
    let x = get(&refs, "maxpool2d_ceil_unbatched.x");
    let pool = MaxPool2d::with_options(PoolOptions::new(3).stride(2).ceil_mode(true));
    let (values, indices) = pool.forward_with_indices(&x)?;
    let (batch_values, batch_indices) = pool.forward_with_indices(&x.unsqueeze(0)?)?;
    assert_eq!(indices.dims(), &[3, 4, 4]);
    assert_eq!(
        indices.to_vec::<i64>()?,
        batch_indices.squeeze(0)?.to_vec::<i64>()?
    );
    assert_eq!(
        values.to_vec::<f32>()?,
        batch_values.squeeze(0)?.to_vec::<f32>()?
    );
    // PyTorch's BatchNorm2d wants [n, c, h, w] ("expected 4D input (got 3D input)").
    let bn = BatchNorm2d::new(3)?;
    assert!(bn.forward(&x).is_err());
    Ok(())
}
