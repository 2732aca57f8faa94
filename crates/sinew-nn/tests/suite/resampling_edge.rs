//! Bad arguments of the padding, normalisation, unflatten and resampling layers are errors,
//! never panics or allocations the size of the request (the PyTorch message each mirrors is
//! quoted beside it).

use sinew_nn::functional as F;
use sinew_nn::*;
use sinew_tensor::{DType, Device, PadMode, Result, Tensor};

fn zeros(dims: &[usize]) -> Tensor {
    Tensor::zeros(dims.to_vec(), DType::F32, &Device::cpu()).unwrap()
}

#[test]
fn bad_padding_is_an_error() -> Result<()> {
    let x = zeros(&[1, 2, 3]);
    // "Padding length must be divisible by 2"; "Padding length should be less than or equal
    // to two times the input dimension".
    assert!(F::pad(&x, &[1, 2, 3], PadMode::Constant(0.0)).is_err());
    assert!(F::pad(&x, &[1; 8], PadMode::Constant(0.0)).is_err());
    // Reflect: "Padding size should be less than the corresponding input dimension";
    // circular: "Padding value causes wrapping around more than once".
    assert!(F::pad(&x, &[3, 0], PadMode::Reflect).is_err());
    assert!(F::pad(&x, &[2, 0], PadMode::Reflect).is_ok());
    assert!(F::pad(&x, &[4, 0], PadMode::Circular).is_err());
    assert!(F::pad(&x, &[3, 3], PadMode::Circular).is_ok());
    assert!(F::pad(&x, &[-1, 0], PadMode::Replicate).is_err());
    assert!(F::pad(&zeros(&[1, 2, 0]), &[1, 0], PadMode::Replicate).is_err());
    assert!(F::pad(&x, &[i64::MAX, 0], PadMode::Replicate).is_err());
    // Negative constant amounts crop, in any dim: F.pad(x, (0, 0, -1, 0)) is [1, 1, 3].
    assert_eq!(
        F::pad(&x, &[0, 0, -1, 0], PadMode::Constant(0.0))?.dims(),
        &[1, 1, 3]
    );
    Ok(())
}

#[test]
fn bad_instance_norm_and_unflatten_calls_are_errors() -> Result<()> {
    let norm = InstanceNorm2d::new(3, true)?;
    // "Expected more than 1 spatial element when training, got input size [2, 3, 1, 1]".
    assert!(norm.forward(&zeros(&[2, 3, 1, 1])).is_err());
    assert!(norm.forward(&zeros(&[2, 4, 2, 2])).is_err());
    assert!(norm.forward(&zeros(&[2, 3])).is_err());
    assert!(norm.forward(&zeros(&[1, 2, 3, 2, 2])).is_err());
    assert_eq!(norm.forward(&zeros(&[3, 2, 2]))?.dims(), &[3, 2, 2]);
    assert!(InstanceNorm1d::new(0, false).is_err());
    // "unflattened_size must ... multiply to the size of the dimension".
    assert!(Unflatten::new(1, &[2, 4]).forward(&zeros(&[2, 6])).is_err());
    assert!(Unflatten::new(2, &[2, 3]).forward(&zeros(&[2, 6])).is_err());
    assert!(
        Unflatten::new(-1, &[usize::MAX, 2])
            .forward(&zeros(&[2, 6]))
            .is_err()
    );
    assert_eq!(
        Unflatten::new(-1, &[3, 1, 2])
            .forward(&zeros(&[2, 6]))?
            .dims(),
        &[2, 3, 1, 2]
    );
    Ok(())
}

/// Each batch norm takes its PyTorch class's ranks ("expected 4D input (got 2D input)"), and
/// the error names the class; plain `BatchNorm` takes any `[n, C, ...]`.
#[test]
fn batch_norms_take_their_classes_ranks() -> Result<()> {
    let two = BatchNorm2d::new(3)?;
    assert_eq!(two.forward(&zeros(&[2, 3, 2, 2]))?.dims(), &[2, 3, 2, 2]);
    for dims in [&[4, 3][..], &[2, 3, 4], &[2, 3, 2, 2, 2]] {
        let err = two.forward(&zeros(dims)).unwrap_err().to_string();
        assert!(
            err.contains("BatchNorm2d") && err.contains("rank 4"),
            "{err}"
        );
    }
    let one = BatchNorm1d::new(3)?;
    assert_eq!(one.forward(&zeros(&[4, 3]))?.dims(), &[4, 3]);
    assert_eq!(one.forward(&zeros(&[2, 3, 4]))?.dims(), &[2, 3, 4]);
    let err = one.forward(&zeros(&[2, 3, 2, 2])).unwrap_err().to_string();
    assert!(
        err.contains("BatchNorm1d") && err.contains("rank 2 or 3"),
        "{err}"
    );
    let any = BatchNorm::new(3)?;
    for dims in [&[4, 3][..], &[2, 3, 4], &[2, 3, 2, 2], &[2, 3, 2, 1, 2]] {
        assert_eq!(any.forward(&zeros(dims))?.dims(), dims);
    }
    assert!(any.forward(&zeros(&[3])).is_err());
    assert_eq!(
        (two.type_name(), one.type_name(), any.type_name()),
        ("BatchNorm2d", "BatchNorm1d", "BatchNorm")
    );
    // The state has PyTorch's names whatever the class.
    let (a, b) = (two.state_dict(), any.state_dict());
    let keys: Vec<&str> = a.keys().collect();
    assert_eq!(keys, b.keys().collect::<Vec<_>>());
    assert_eq!(keys[0], "weight");
    Ok(())
}

#[test]
fn bad_resampling_is_an_error() -> Result<()> {
    let x = zeros(&[1, 2, 3, 4]);
    for to in [
        UpsampleTo::Scale(0.0),
        UpsampleTo::Scale(-2.0),
        UpsampleTo::Scale(f64::NAN),
        UpsampleTo::Scale(f64::INFINITY),
        // A factor that leaves a dim empty, and sizes that are not one per spatial dim.
        UpsampleTo::Scale(0.2),
        UpsampleTo::Size(vec![2, 3, 4]),
        UpsampleTo::Size(vec![0, 3]),
        // An output far past any memory: an error, not an abort.
        UpsampleTo::Scale(1e15),
        UpsampleTo::Size(vec![usize::MAX, usize::MAX]),
    ] {
        assert!(F::upsample_nearest(&x, &to).is_err(), "{to:?}");
    }
    assert!(F::upsample_nearest(&zeros(&[2, 3]), &UpsampleTo::Scale(2.0)).is_err());
    // Linear resampling checks the same sizes; one output position with align_corners reads
    // the first input (PyTorch's scale 0).
    let linear = Interpolation::Linear {
        align_corners: true,
    };
    assert!(F::interpolate(&x, &UpsampleTo::Scale(1e15), linear).is_err());
    assert!(F::interpolate(&x, &UpsampleTo::Size(vec![0, 2]), linear).is_err());
    // Integers resample by nearest only (PyTorch: linear "not implemented for 'Long'").
    let ids = Tensor::from_vec(vec![1i64, 2, 4], [1, 1, 3])?;
    assert!(F::interpolate(&ids, &UpsampleTo::Scale(2.0), linear).is_err());
    assert_eq!(
        F::upsample_nearest(&ids, &UpsampleTo::Scale(2.0))?.to_vec::<i64>()?,
        vec![1, 1, 2, 2, 4, 4]
    );
    let ramp = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], [1, 1, 3])?;
    assert_eq!(
        F::interpolate(&ramp, &UpsampleTo::Size(vec![1]), linear)?.to_vec::<f32>()?,
        vec![1.0]
    );
    // F.interpolate(ramp, size=5, mode="linear", align_corners=True) = [1, 1.5, 2, 3, 4]
    assert_eq!(
        F::interpolate(&ramp, &UpsampleTo::Size(vec![5]), linear)?.to_vec::<f32>()?,
        vec![1.0, 1.5, 2.0, 3.0, 4.0]
    );
    assert!(F::upsample_nearest(&zeros(&[1, 1, 0, 2]), &UpsampleTo::Size(vec![2, 2])).is_err());
    // One size for every spatial dim, as PyTorch's `size=int`.
    assert_eq!(
        F::upsample_nearest(&x, &UpsampleTo::Size(vec![5]))?.dims(),
        &[1, 2, 5, 5]
    );
    // "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of
    // upscale_factor"; "pixel_unshuffle expects height to be divisible by downscale_factor".
    assert!(F::pixel_shuffle(&x, 2).is_err());
    assert!(F::pixel_shuffle(&x, 0).is_err());
    assert!(F::pixel_shuffle(&zeros(&[4, 4]), 1).is_err());
    assert!(F::pixel_shuffle(&x, usize::MAX).is_err());
    assert!(F::pixel_unshuffle(&x, 2).is_err());
    assert!(F::pixel_unshuffle(&x, 0).is_err());
    assert_eq!(
        F::pixel_unshuffle(&zeros(&[2, 4, 4]), 2)?.dims(),
        &[8, 2, 2]
    );
    Ok(())
}

/// Grouped transposed convolutions: the weight holds `out / groups` output channels per input
/// channel as PyTorch's does, and groups that do not divide both channel counts (zero among
/// them) are errors, not panics.
#[test]
fn grouped_transposed_convolutions_check_their_groups() -> Result<()> {
    let opts = Conv2dOptions::default().stride(2);
    let up = ConvTranspose2d::new(4, 6, 3, opts.groups(2), 1)?;
    assert_eq!(up.weight.value().dims(), [4, 3, 3, 3]);
    assert_eq!(up.forward(&zeros(&[1, 4, 5, 5]))?.dims(), [1, 6, 12, 12]);
    let up1 = ConvTranspose1d::new(6, 3, 2, opts.groups(3), 0)?;
    assert_eq!(up1.weight.value().dims(), [6, 1, 2]);
    assert_eq!(up1.forward(&zeros(&[2, 6, 4]))?.dims(), [2, 3, 8]);
    for groups in [0, 4] {
        let err = ConvTranspose2d::new(4, 6, 3, opts.groups(groups), 0)
            .err()
            .expect("groups that do not divide 4 and 6")
            .to_string();
        assert!(err.contains("must divide by groups"), "{err}");
        assert!(ConvTranspose1d::new(4, 6, 3, opts.groups(groups), 0).is_err());
    }
    // Input channels that do not match the weight's are a shape error.
    assert!(up.forward(&zeros(&[1, 2, 5, 5])).is_err());
    Ok(())
}
