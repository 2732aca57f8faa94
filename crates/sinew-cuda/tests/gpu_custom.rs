//! A crate's own PTX kernel on Sinew's stream (`CudaBackend::load_module` / `launch_custom`):
//! device memory from Sinew's allocator, results ordered with Sinew's own kernels.

#![cfg(feature = "cuda")]

mod common;

use common::gpu;
use sinew_cuda::{CudaBackend, CudaStorage, kernel_args};
use sinew_tensor::{CpuStorage, DType, Device, Tensor};

/// `x[i] = a * x[i] + y[i]` for `i < n` (nvcc 13.0, compute_80).
const SCALE_ADD: &str = r#"
.version 9.0
.target sm_80
.address_size 64

.visible .entry scale_add(
	.param .u64 scale_add_param_0,
	.param .u64 scale_add_param_1,
	.param .f32 scale_add_param_2,
	.param .u32 scale_add_param_3
)
{
	.reg .pred 	%p<2>;
	.reg .f32 	%f<5>;
	.reg .b32 	%r<6>;
	.reg .b64 	%rd<8>;

	ld.param.u64 	%rd1, [scale_add_param_0];
	ld.param.u64 	%rd2, [scale_add_param_1];
	ld.param.f32 	%f1, [scale_add_param_2];
	ld.param.u32 	%r2, [scale_add_param_3];
	mov.u32 	%r3, %ctaid.x;
	mov.u32 	%r4, %ntid.x;
	mov.u32 	%r5, %tid.x;
	mad.lo.s32 	%r1, %r3, %r4, %r5;
	setp.ge.u32 	%p1, %r1, %r2;
	@%p1 bra 	$L__BB0_2;

	cvta.to.global.u64 	%rd3, %rd1;
	mul.wide.u32 	%rd4, %r1, 4;
	add.s64 	%rd5, %rd3, %rd4;
	ld.global.f32 	%f2, [%rd5];
	cvta.to.global.u64 	%rd6, %rd2;
	add.s64 	%rd7, %rd6, %rd4;
	ld.global.f32 	%f3, [%rd7];
	fma.rn.f32 	%f4, %f2, %f1, %f3;
	st.global.f32 	[%rd5], %f4;

$L__BB0_2:
	ret;
}
"#;

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_custom_ptx_kernel_runs_on_sinews_stream() {
    let dev = gpu();
    let cuda = CudaBackend::of(&dev).expect("a CUDA device");
    let n = 1000usize;
    let xs: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let ys: Vec<f32> = (0..n).map(|i| 0.5 * i as f32 - 3.0).collect();
    let x = cuda.upload(&CpuStorage::F32(xs.clone())).unwrap();
    // y comes from a Sinew tensor: its storage is read in place by the custom kernel.
    let y_tensor = Tensor::from_vec(ys.clone(), [n])
        .unwrap()
        .to_device(&dev)
        .unwrap();
    let module = cuda.load_module(SCALE_ADD).unwrap();
    // Loading the same text again reuses the module; functions are cached.
    assert!(std::sync::Arc::ptr_eq(
        &module,
        &cuda.load_module(SCALE_ADD).unwrap()
    ));
    let f = module.function("scale_add").unwrap();
    let (a, count) = (2.0f32, n as u32);
    let x_ptr = x.device_ptr();
    y_tensor.with_storage(|s, l| {
        let y = CudaStorage::downcast(s).expect("a CUDA storage");
        let y_ptr = y.ptr_at(l.offset());
        // SAFETY: scale_add takes (float *, const float *, float, unsigned); x and y hold n f32s
        // and outlive the launch (the download below waits for the stream).
        unsafe {
            cuda.launch_custom(
                &f,
                (count.div_ceil(256), 1, 1),
                (256, 1, 1),
                0,
                kernel_args![x_ptr, y_ptr, a, count],
            )
        }
        .unwrap();
    });
    // A Sinew op queued after the custom kernel sees its result (same stream).
    let x_tensor = Tensor::from_storage(Box::new(x), [n], dev.clone()).unwrap();
    let doubled = x_tensor.add(&x_tensor).unwrap();
    let doubled = doubled
        .to_device(&Device::cpu())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for i in 0..n {
        let want = 2.0 * (2.0 * xs[i] + ys[i]);
        assert_eq!(doubled[i], want, "element {i}");
    }
    // Errors, not crashes: a missing entry, bad PTX, an empty launch.
    assert!(module.function("no_such_kernel").is_err());
    assert!(cuda.load_module("this is not PTX").is_err());
    let z = cuda.zeros(DType::F32, 4).unwrap();
    let z_ptr = z.device_ptr();
    // SAFETY: arguments as above; the launch is rejected before reaching the driver.
    let empty = unsafe {
        cuda.launch_custom(
            &f,
            (0, 1, 1),
            (256, 1, 1),
            0,
            kernel_args![z_ptr, z_ptr, a, count],
        )
    };
    assert!(empty.is_err());
    assert_eq!(cuda.download(&z).unwrap().as_bytes(), &[0u8; 16]);
}
