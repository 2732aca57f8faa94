//! Host-side checks of the `cuda` feature: they run everywhere (against the stub driver on CI).

#![cfg(feature = "cuda")]

use sinew_tensor::{Device, Error};

#[test]
fn opening_reports_a_missing_gpu_as_a_value_not_a_panic() {
    sinew_cuda::register();
    let count = sinew_cuda::device_count();
    let opened = sinew_cuda::open(0).expect("open never fails for a missing device");
    assert_eq!(opened.is_some(), count > 0);
    match Device::cuda(count) {
        Err(Error::Device { msg, .. }) => assert!(msg.contains("CUDA"), "message: {msg}"),
        other => panic!("expected a device error for ordinal {count}, got {other:?}"),
    }
    if count == 0 {
        let err = Device::cuda(0).unwrap_err();
        assert!(err.to_string().contains("no CUDA-capable device"), "{err}");
        assert!(!sinew_cuda::is_available());
    }
}

#[test]
fn the_cuda_backend_is_reached_by_downcasting_a_device() {
    // The CPU device has another backend: no CudaBackend behind it.
    assert!(sinew_cuda::CudaBackend::of(&Device::cpu()).is_none());
    if let Some(gpu) = sinew_cuda::open(0).unwrap() {
        let cuda = sinew_cuda::CudaBackend::of(&gpu).expect("a CUDA device's backend");
        assert_eq!(cuda.ordinal(), 0);
    }
}

#[test]
fn kernel_args_points_at_each_value_in_order() {
    let (n, scale, ptr) = (7u32, 2.5f32, 0xdead_beef_u64);
    let args: &[*mut std::ffi::c_void] = sinew_cuda::kernel_args![n, scale, ptr];
    assert_eq!(args.len(), 3);
    // SAFETY: each pointer was made from a reference to the local of that type, still alive.
    unsafe {
        assert_eq!(*(args[0] as *const u32), 7);
        assert_eq!(*(args[1] as *const f32), 2.5);
        assert_eq!(*(args[2] as *const u64), 0xdead_beef);
    }
}
