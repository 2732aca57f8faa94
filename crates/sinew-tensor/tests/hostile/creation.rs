//! Creation ops with absurd sizes and ranges: errors that name the op, never an abort.

use sinew_tensor::{DType, Device, Error, Generator, Tensor};

use super::err_text;

#[test]
fn constants_with_absurd_shapes() {
    let cpu = Device::cpu();
    assert_eq!(
        err_text(Tensor::ones([usize::MAX], DType::F32, &cpu)),
        "ones: the element count of shape [18446744073709551615] overflows the addressable size"
    );
    assert!(matches!(
        Tensor::full([1 << 40, 1 << 40], 2.0, DType::F64, &cpu),
        Err(Error::Overflow { op: "full", .. })
    ));
    // Past isize::MAX elements even though the product fits in usize.
    assert!(matches!(
        Tensor::zeros([1 << 63], DType::U8, &cpu),
        Err(Error::Overflow { op: "zeros", .. })
    ));
    // An empty tensor whose other dims would overflow the strides is refused too.
    assert!(matches!(
        Tensor::zeros([0, 1 << 32, 1 << 32], DType::F32, &cpu),
        Err(Error::Overflow { .. })
    ));
    // ...but a plain empty tensor with a big dim is fine.
    assert_eq!(
        Tensor::zeros([0, 1 << 40], DType::F32, &cpu)
            .unwrap()
            .elem_count(),
        0
    );
    for dtype in [DType::F64, DType::F16, DType::Bool, DType::I64] {
        assert!(matches!(
            Tensor::zeros([1 << 62], dtype, &cpu),
            Err(Error::OutOfMemory { op: "zeros", .. })
        ));
    }
}

#[test]
fn ranges_with_absurd_bounds() {
    let cpu = Device::cpu();
    assert!(
        err_text(Tensor::arange(0.0, 1e300, 1.0, DType::F32, &cpu)).starts_with(
            "arange: the length of range 0.0..1e300 step 1.0 (1e300 values) overflows"
        )
    );
    assert_eq!(
        err_text(Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F32, &cpu)),
        "arange: bad range 0..inf step 1"
    );
    assert!(Tensor::arange(f64::NAN, 1.0, 1.0, DType::F32, &cpu).is_err());
    assert!(Tensor::arange(0.0, 1.0, f64::MIN_POSITIVE, DType::F32, &cpu).is_err());
    assert!(matches!(
        Tensor::arange(0.0, (1u64 << 60) as f64, 1.0, DType::F32, &cpu),
        Err(Error::OutOfMemory { op: "arange", .. })
    ));
    assert!(matches!(
        Tensor::linspace(0.0, 1.0, usize::MAX, DType::F32, &cpu),
        Err(Error::Overflow { op: "linspace", .. })
    ));
    assert!(matches!(
        Tensor::linspace(0.0, 1.0, 1 << 60, DType::F32, &cpu),
        Err(Error::OutOfMemory { op: "linspace", .. })
    ));
    assert_eq!(
        err_text(Tensor::eye(1 << 32, DType::F32, &cpu)),
        "eye: the element count of shape [4294967296, 4294967296] overflows the addressable size"
    );
    assert!(matches!(
        Tensor::eye(1 << 28, DType::F32, &cpu),
        Err(Error::OutOfMemory { op: "eye", .. })
    ));
}

#[test]
fn random_tensors_with_absurd_shapes() {
    let cpu = Device::cpu();
    assert!(matches!(
        Tensor::randn([1 << 60], DType::F32, &cpu),
        Err(Error::OutOfMemory { op: "randn", .. })
    ));
    assert!(matches!(
        Tensor::rand([1 << 32, 1 << 32], DType::F32, &cpu),
        Err(Error::Overflow { op: "uniform", .. })
    ));
    let mut g = Generator::new(1);
    assert!(matches!(
        g.randint([1 << 61], 0, 10, &cpu),
        Err(Error::OutOfMemory { op: "randint", .. })
    ));
    assert!(matches!(
        g.bernoulli([usize::MAX], 0.5, DType::F32, &cpu),
        Err(Error::Overflow {
            op: "bernoulli",
            ..
        })
    ));
    assert!(matches!(
        g.randperm(1 << 61, &cpu),
        Err(Error::OutOfMemory { op: "randperm", .. })
    ));
    // The generator still works afterwards.
    let x = g
        .rand([4], DType::F32, &cpu)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(x.iter().all(|v| (0.0..1.0).contains(v)));
}
