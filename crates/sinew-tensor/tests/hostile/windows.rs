//! Convolution, pooling and unfold with hostile window geometry.

use sinew_tensor::{Conv2dConfig, DType, Device, Error, Pool2dConfig, Tensor, Unfold2d};

use super::err_text;

fn image() -> Tensor {
    Tensor::arange(0.0, 16.0, 1.0, DType::F32, &Device::cpu())
        .unwrap()
        .reshape([1, 1, 4, 4])
        .unwrap()
}

fn kernel(k: usize) -> Tensor {
    Tensor::ones([1, 1, k, k], DType::F32, &Device::cpu()).unwrap()
}

#[test]
fn conv2d_with_hostile_geometry() {
    let (x, w) = (image(), kernel(3));
    let conv = |stride, padding, dilation| {
        x.conv2d(
            &w,
            None,
            Conv2dConfig {
                stride,
                padding,
                dilation,
                groups: 1,
            },
        )
    };
    assert_eq!(
        err_text(conv((1, 1), (usize::MAX, 0), (1, 1))),
        "conv2d: the height window arithmetic (size 4, kernel 3, padding 18446744073709551615, dilation 1) overflows the addressable size"
    );
    assert!(matches!(
        conv((1, 1), (1 << 40, 1 << 40), (1, 1)),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        conv((1, 1), (1 << 28, 1 << 28), (1, 1)),
        Err(Error::OutOfMemory { .. })
    ));
    assert_eq!(
        err_text(conv((0, 1), (0, 0), (1, 1))),
        "conv2d: kernel size, stride and dilation must be positive"
    );
    assert!(conv((1, 1), (0, 0), (0, 1)).is_err());
    assert!(matches!(
        conv((1, 1), (0, 0), (usize::MAX, 1)),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(
        err_text(x.conv2d(&kernel(5), None, Conv2dConfig::default())),
        "conv2d: window (5, 5) (dilation (1, 1), padding (0, 0)) is larger than the input 4x4"
    );
    let groups0 = Conv2dConfig {
        groups: 0,
        ..Conv2dConfig::default()
    };
    assert!(x.conv2d(&w, None, groups0).is_err());
    // A huge stride keeps one window: sum of the top-left 3x3 = 0+1+2+4+5+6+8+9+10 = 45.
    let y = conv((usize::MAX, usize::MAX), (0, 0), (1, 1)).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![45.0]);
}

#[test]
fn conv_transpose2d_with_hostile_geometry() {
    let (x, w) = (image(), kernel(3));
    let up = |stride, padding, dilation, extra| {
        let cfg = Conv2dConfig {
            stride,
            padding,
            dilation,
            groups: 1,
        };
        x.conv_transpose2d(&w, None, cfg, extra)
    };
    assert!(matches!(
        up((usize::MAX, 1), (0, 0), (1, 1), (0, 0)),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        up((1, 1), (0, 0), (usize::MAX / 2, 1), (0, 0)),
        Err(Error::Overflow { .. })
    ));
    // (4 - 1) * 2^40 rows of 6: more than memory, refused before any allocation.
    assert!(up((1 << 40, 1), (0, 0), (1, 1), (0, 0)).is_err());
    assert_eq!(
        err_text(up((1, 1), (5, 0), (1, 1), (0, 0))),
        "conv_transpose2d: the padding is larger than the output"
    );
    assert_eq!(
        err_text(up((0, 1), (0, 0), (1, 1), (0, 0))),
        "conv_transpose2d: kernel size, stride and dilation must be positive"
    );
    assert!(up((2, 2), (0, 0), (1, 1), (2, 0)).is_err());
    // Groups that do not divide the input channels.
    let cfg = Conv2dConfig {
        groups: 2,
        ..Conv2dConfig::default()
    };
    assert!(x.conv_transpose2d(&w, None, cfg, (0, 0)).is_err());
}

#[test]
fn pooling_with_hostile_geometry() {
    let x = image();
    let cfg = |k: usize, stride: Option<(usize, usize)>, padding: (usize, usize)| Pool2dConfig {
        stride,
        padding,
        ..Pool2dConfig::new(k)
    };
    assert!(x.max_pool2d(cfg(0, None, (0, 0))).is_err());
    assert!(x.max_pool2d(cfg(2, Some((0, 0)), (0, 0))).is_err());
    assert!(x.avg_pool2d(cfg(2, Some((0, 1)), (0, 0))).is_err());
    assert!(x.max_pool2d(cfg(2, None, (2, 2))).is_err());
    assert!(x.max_pool2d(cfg(1 << 40, None, (0, 0))).is_err());
    let dil0 = Pool2dConfig {
        dilation: (0, 0),
        ..Pool2dConfig::new(2)
    };
    assert!(x.max_pool2d(dil0).is_err());
    assert!(x.avg_pool2d(dil0).is_err());
    // Padding at most half a huge kernel still overflows `h + 2 * padding`.
    let wide = cfg(usize::MAX, None, (usize::MAX / 2, usize::MAX / 2));
    assert!(matches!(
        x.max_pool2d(wide),
        Err(Error::Overflow {
            op: "max_pool2d",
            ..
        })
    ));
    assert!(matches!(
        x.avg_pool2d(wide),
        Err(Error::Overflow {
            op: "avg_pool2d",
            ..
        })
    ));
    assert!(x.max_pool1d(0, None, 0).is_err());
    assert!(x.avg_pool1d(usize::MAX, Some(usize::MAX), 0).is_err());
}

#[test]
fn max_pool_of_minus_infinity_points_inside_the_input() {
    // F.max_pool2d(torch.full((1, 1, 2, 2), -inf), 2, stride=1, padding=1, return_indices=True)
    // = (all -inf, [[0, 0, 1], [0, 0, 1], [2, 2, 3]]): the first in-bounds tap, not padding.
    let x = Tensor::full([1, 1, 2, 2], f64::NEG_INFINITY, DType::F32, &Device::cpu()).unwrap();
    let cfg = Pool2dConfig {
        stride: Some((1, 1)),
        padding: (1, 1),
        ..Pool2dConfig::new(2)
    };
    let (v, i) = x.max_pool2d(cfg).unwrap();
    assert_eq!(v.to_vec::<f32>().unwrap(), vec![f32::NEG_INFINITY; 9]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 0, 1, 0, 0, 1, 2, 2, 3]);
    // A finite value in a window still wins: max_pool2d([[-inf, 5], [-inf, -inf]]) same config
    // = values [[-inf, 5, 5], [-inf, 5, 5], [-inf, -inf, -inf]], indices [[0, 1, 1], [0, 1, 1], [2, 2, 3]].
    let x = Tensor::from_vec(
        vec![f32::NEG_INFINITY, 5.0, f32::NEG_INFINITY, f32::NEG_INFINITY],
        [1, 1, 2, 2],
    )
    .unwrap();
    let (v, i) = x.max_pool2d(cfg).unwrap();
    let inf = f32::NEG_INFINITY;
    assert_eq!(
        v.to_vec::<f32>().unwrap(),
        vec![inf, 5.0, 5.0, inf, 5.0, 5.0, inf, inf, inf]
    );
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1, 1, 0, 1, 1, 2, 2, 3]);
    // With dilation: F.max_pool2d(torch.full((1, 1, 1, 5), -inf), (1, 2), stride=1, padding=(0, 1),
    // dilation=(1, 2), return_indices=True)[1] = [[[[1, 0, 1, 2, 3]]]].
    let x = Tensor::full([1, 1, 1, 5], f64::NEG_INFINITY, DType::F32, &Device::cpu()).unwrap();
    let cfg = Pool2dConfig {
        kernel: (1, 2),
        stride: Some((1, 1)),
        padding: (0, 1),
        dilation: (1, 2),
        count_include_pad: true,
    };
    let (_, i) = x.max_pool2d(cfg).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 0, 1, 2, 3]);
}

#[test]
fn unfold_and_fold_reject_a_spec_for_another_shape() {
    let x = image();
    let spec = Unfold2d {
        n: 1,
        c: 1,
        h: 8,
        w: 8,
        kernel: (2, 2),
        stride: (1, 1),
        padding: (0, 0),
        dilation: (1, 1),
        pad_value: 0.0,
    };
    assert_eq!(
        err_text(x.unfold2d(&spec)),
        "unfold2d: window spec for input [1, 1, 8, 8] does not match the tensor's shape [1, 1, 4, 4]"
    );
    let good = Unfold2d { h: 4, w: 4, ..spec };
    let cols = x.unfold2d(&good).unwrap();
    assert_eq!(cols.dims(), &[1, 4, 9]);
    assert_eq!(
        err_text(cols.fold2d(&spec)),
        "fold2d: window spec expects columns [1, 4, 49], the tensor has shape [1, 4, 9]"
    );
    assert_eq!(cols.fold2d(&good).unwrap().dims(), &[1, 1, 4, 4]);
    assert!(
        x.unfold2d(&Unfold2d {
            stride: (0, 1),
            ..good
        })
        .is_err()
    );
    assert!(
        x.unfold2d(&Unfold2d {
            kernel: (0, 1),
            ..good
        })
        .is_err()
    );
    assert!(
        x.unfold2d(&Unfold2d {
            padding: (usize::MAX, 0),
            ..good
        })
        .is_err()
    );
    assert!(
        x.unfold2d(&Unfold2d {
            c: usize::MAX,
            ..good
        })
        .is_err()
    );
    assert!(x.unfold2d(&Unfold2d { n: 2, ..good }).is_err());
}
