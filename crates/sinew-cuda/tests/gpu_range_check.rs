//! The deferred value check (`Tensor::check_in_range`, binary cross entropy's probabilities in
//! `[0, 1]`) on the GPU: one kernel of its own at the call and no wait; a value outside the
//! range (or NaN) comes back from the next wait for the device with the CPU's error, naming the
//! same first element, in every float dtype and through a strided view.

#![cfg(feature = "cuda")]

mod common;

use common::{gpu, kernel_launches};
use sinew_tensor::{DType, Device, Tensor};

/// `[3, 4]` values in `[0, 1]` with `bad` at row-major position 6 (`None`: none outside),
/// transposed (a strided view whose logical element 6 is row 2, column 1 of the source) .
fn probabilities(bad: Option<f32>, dtype: DType) -> Tensor {
    let mut v: Vec<f32> = (0..12).map(|i| i as f32 / 11.0).collect();
    if let Some(x) = bad {
        // Logical element 6 of the transpose [4, 3] is (2, 0) there, (0, 2) in the source.
        v[2] = x;
    }
    Tensor::from_vec(v, [3, 4])
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .t()
        .unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn values_outside_the_range_are_the_cpus_error_at_the_next_wait() {
    let dev = gpu();
    let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let check = |t: &Tensor| t.check_in_range("bce", (0.0, 1.0), "all in [0, 1]");
        let inside = probabilities(None, dtype).to_device(&dev).unwrap();
        check(&inside).unwrap();
        dev.synchronize().expect("every value inside");
        for bad in [1.5f32, -0.25, f32::NAN] {
            let host = probabilities(Some(bad), dtype);
            let cpu_err = check(&host).unwrap_err().to_string();
            assert!(cpu_err.contains("(element 6 is"), "{dtype}: {cpu_err}");
            let x = host.to_device(&dev).unwrap();
            let (launches, waits) = (kernel_launches(&dev), cuda.stream_synchronizations());
            check(&x).expect("no error at the call");
            assert_eq!(kernel_launches(&dev) - launches, 1, "{dtype}: one kernel");
            assert_eq!(cuda.stream_synchronizations(), waits, "{dtype}: no wait");
            let err = x.to_vec_f64().unwrap_err().to_string();
            assert_eq!(err, cpu_err, "{dtype} {bad}");
            // Reported once: the next wait is clean.
            dev.synchronize().expect("reported once");
        }
    }
    let empty = Tensor::zeros([0, 3], DType::F32, &Device::cpu())
        .unwrap()
        .to_device(&dev)
        .unwrap();
    empty.check_in_range("bce", (0.0, 1.0), "m").unwrap();
    dev.synchronize().unwrap();
}

/// Over many blocks (run in any order by the GPU; the emulator's shuffled and reversed orders
/// in CI), the lowest bad position wins the slot, as on the CPU.
#[test]
#[ignore = "needs a CUDA GPU"]
fn the_first_bad_element_wins_whatever_the_block_order() {
    let dev = gpu();
    let mut v = vec![0.5f32; 100_000];
    for (at, x) in [(70_000, 2.0f32), (30_001, -3.0), (99_999, f32::NAN)] {
        v[at] = x;
    }
    let host = Tensor::from_vec(v, [100_000]).unwrap();
    let check = |t: &Tensor| t.check_in_range("bce", (0.0, 1.0), "all in [0, 1]");
    let cpu_err = check(&host).unwrap_err().to_string();
    assert!(cpu_err.ends_with("(element 30001 is -3)"), "{cpu_err}");
    check(&host.to_device(&dev).unwrap()).unwrap();
    assert_eq!(dev.synchronize().unwrap_err().to_string(), cpu_err);
}
