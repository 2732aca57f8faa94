//! The model zoo against torchvision (`tests/reference/zoo.txt`, from `zoo_ref.py`): the same
//! state_dict keys in the same order, dtypes, shapes and parameter counts; forward shapes.

use crate::common;

use sinew_nn::zoo::*;
use sinew_nn::{Module, ModuleExt};
use sinew_tensor::{DType, Device, Result, Tensor};

fn build(name: &str) -> Result<Box<dyn Module>> {
    Ok(match name {
        "resnet18" => Box::new(resnet18(1000)?),
        "resnet34" => Box::new(resnet34(1000)?),
        "resnet50" => Box::new(resnet50(1000)?),
        "alexnet" => Box::new(alexnet(1000)?),
        "vgg11" => Box::new(vgg11(false, 1000)?),
        "vgg13" => Box::new(vgg13(false, 1000)?),
        "vgg16" => Box::new(vgg16(false, 1000)?),
        "vgg16_bn" => Box::new(vgg16(true, 1000)?),
        "vgg19_bn" => Box::new(vgg19(true, 1000)?),
        other => panic!("no zoo model for {other}"),
    })
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::I64 => "int64",
        _ => "other",
    }
}

#[test]
fn zoo_models_have_torchvisions_keys_shapes_and_parameter_counts() -> Result<()> {
    let text = std::fs::read_to_string(common::reference_path("zoo.txt")).unwrap();
    let mut models: Vec<&str> = Vec::new();
    for line in text.lines() {
        let name = line.split(' ').next().unwrap();
        if !models.contains(&name) {
            models.push(name);
        }
    }
    assert_eq!(models.len(), 6);
    for name in models {
        let model = build(name)?;
        let mut ours: Vec<String> = model
            .state_dict()
            .iter()
            .map(|(k, t)| {
                let shape: Vec<String> = t.dims().iter().map(|d| d.to_string()).collect();
                let shape = if shape.is_empty() {
                    "scalar".to_string()
                } else {
                    shape.join("x")
                };
                format!("{name} {k} {} {shape}", dtype_name(t.dtype()))
            })
            .collect();
        ours.push(format!("{name} #parameters {}", model.num_parameters()));
        let theirs: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name} ")))
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
    Ok(())
}

/// The CIFAR ResNet with `n` blocks per stage and option A shortcuts (no parameters), counted
/// from the paper's description: a 3x3 stem of 16 channels, stages of 16, 32 and 64 channels
/// (each block two bias-free 3x3 convolutions and two batch norms), a 64 -> 10 classifier.
fn cifar_resnet_parameters(n: usize) -> usize {
    let conv = |cin: usize, cout: usize| cin * cout * 9;
    let bn = |c: usize| 2 * c;
    let mut total = conv(3, 16) + bn(16) + 64 * 10 + 10;
    let mut cin = 16;
    for c in [16, 32, 64] {
        for b in 0..n {
            let from = if b == 0 { cin } else { c };
            total += conv(from, c) + conv(c, c) + 2 * bn(c);
        }
        cin = c;
    }
    total
}

#[test]
fn small_models_have_the_expected_sizes_and_output_shapes() -> Result<()> {
    let cpu = Device::cpu();
    let cases: Vec<(Box<dyn Module>, Vec<usize>, usize)> = vec![
        (Box::new(lenet5(10)?), vec![2, 1, 28, 28], 61_706),
        (
            Box::new(resnet20(10)?),
            vec![2, 3, 32, 32],
            cifar_resnet_parameters(3),
        ),
        (
            Box::new(mlp(&[784, 512, 512, 10])?),
            vec![2, 1, 28, 28],
            669_706,
        ),
        (
            Box::new(logistic_regression(784, 10)?),
            vec![2, 1, 28, 28],
            7_850,
        ),
    ];
    for (model, input, params) in cases {
        assert_eq!(model.num_parameters(), params);
        model.eval();
        let y = model.forward(&Tensor::randn(input, DType::F32, &cpu)?)?;
        assert_eq!(y.dims(), &[2, 10]);
    }
    assert_eq!(resnet32(10)?.num_parameters(), cifar_resnet_parameters(5));
    assert_eq!(resnet56(10)?.num_parameters(), cifar_resnet_parameters(9));
    assert_eq!(
        cifar_resnet_parameters(3),
        269_722,
        "ResNet-20: the paper's 0.27M"
    );
    Ok(())
}

#[test]
fn imagenet_models_run_a_forward_pass() -> Result<()> {
    let model = resnet18(7)?;
    model.eval();
    let x = Tensor::randn([1, 3, 64, 64], DType::F32, &Device::cpu())?;
    assert_eq!(model.forward(&x)?.dims(), &[1, 7]);
    Ok(())
}

#[test]
fn the_perceptron_learns_a_linearly_separable_rule() -> Result<()> {
    // y = 1 when x0 + x1 > 1: separable, so the perceptron rule converges.
    let xs: Vec<f32> = vec![
        0.0, 0.0, 1.0, 1.0, 0.2, 0.3, 0.9, 0.8, 1.0, 0.0, 0.0, 2.0, 0.1, 0.1, 1.5, 0.5,
    ];
    let ys: Vec<f32> = xs.chunks(2).map(|p| f32::from(p[0] + p[1] > 1.0)).collect();
    let x = Tensor::from_vec(xs, [8, 2])?;
    let y = Tensor::from_vec(ys.clone(), [8])?;
    let p = Perceptron::new(2)?;
    let mut mistakes = usize::MAX;
    for _ in 0..100 {
        mistakes = p.train_epoch(&x, &y, 0.1)?;
        if mistakes == 0 {
            break;
        }
    }
    assert_eq!(mistakes, 0);
    assert_eq!(p.forward(&x)?.flatten_all()?.to_vec::<f32>()?, ys);
    Ok(())
}
