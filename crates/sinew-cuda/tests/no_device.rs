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
