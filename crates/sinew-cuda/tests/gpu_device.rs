//! Device-level behaviour on a real GPU: transfers, the caching allocator, out-of-memory as an
//! error, use from other threads, batch uploads on the copy stream.

#![cfg(feature = "cuda")]

mod common;

use common::{gpu, randn};
use sinew_tensor::{DType, Device, Error, Tensor};

#[test]
#[ignore = "needs a CUDA GPU"]
fn tensors_round_trip_for_every_dtype() {
    let dev = gpu();
    let backend = sinew_cuda::cuda_backend(0).unwrap();
    println!(
        "GPU: {} (sm_{}{}, {} SMs)",
        backend.name(),
        backend.compute_capability().0,
        backend.compute_capability().1,
        backend.multiprocessors()
    );
    for dtype in DType::ALL {
        let x = randn(1, &[3, 1000, 7], DType::F64)
            .mul_scalar(10.0)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let back = x
            .to_device(&dev)
            .unwrap()
            .to_device(&Device::cpu())
            .unwrap();
        assert_eq!(
            back.to_cpu_storage().unwrap(),
            x.to_cpu_storage().unwrap(),
            "{dtype}"
        );
        let view = x
            .to_device(&dev)
            .unwrap()
            .permute(&[2, 0, 1])
            .unwrap()
            .narrow(1, 1, 2)
            .unwrap();
        let expect = x
            .permute(&[2, 0, 1])
            .unwrap()
            .narrow(1, 1, 2)
            .unwrap()
            .contiguous()
            .unwrap();
        assert_eq!(
            view.to_cpu_storage().unwrap(),
            expect.to_cpu_storage().unwrap(),
            "strided download {dtype}"
        );
    }
    // Bigger than the pinned staging limit: the direct path.
    let big = randn(2, &[17 << 20], DType::F32);
    let back = big.to_device(&dev).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(back, big.to_vec::<f32>().unwrap());
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn allocator_reuses_blocks_and_reports_out_of_memory() {
    let dev = gpu();
    let backend = sinew_cuda::cuda_backend(0).unwrap();
    let x = Tensor::zeros([1 << 20], DType::F32, &dev).unwrap();
    let before = backend.memory_stats();
    drop(x);
    let freed = backend.memory_stats();
    assert_eq!(freed.allocated + (4 << 20), before.allocated);
    assert!(freed.cached >= 4 << 20);
    let y = Tensor::ones([1 << 20], DType::F32, &dev).unwrap();
    let after = backend.memory_stats();
    assert_eq!(after.reuses, freed.reuses + 1, "the freed block is reused");
    assert_eq!(after.driver_allocs, freed.driver_allocs);
    assert!(after.peak_allocated >= after.allocated);
    match Tensor::zeros([1usize << 42], DType::U8, &dev) {
        Err(Error::Device { msg, .. }) => {
            assert!(msg.contains("out of memory"), "{msg}");
            println!("4 TiB allocation: {msg}");
        }
        other => panic!("expected an out-of-memory error, got {other:?}"),
    }
    // The device still works afterwards.
    assert_eq!(
        y.sum_all().unwrap().to_scalar::<f32>().unwrap(),
        (1 << 20) as f32
    );
    backend.empty_cache().unwrap();
    assert_eq!(backend.memory_stats().cached, 0);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn other_threads_use_the_device() {
    let dev = gpu();
    let x = randn(3, &[64, 64], DType::F32).to_device(&dev).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let x = x.clone();
            std::thread::spawn(move || {
                x.mul_scalar(i as f64)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
        })
        .collect();
    let total: f32 = x.sum_all().unwrap().to_scalar().unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        let got = h.join().unwrap();
        assert!(
            (got - total * i as f32).abs() <= 1e-3 * total.abs().max(1.0),
            "thread {i}: {got}"
        );
    }
    dev.synchronize().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn batch_uploads_run_beside_the_kernels_and_reuse_blocks_only_when_idle() {
    let dev = gpu();
    let backend = sinew_cuda::cuda_backend(0).unwrap();
    // Milliseconds of kernels queued first, so that the uploads below are copied while the
    // kernel stream is still busy.
    let a = randn(4, &[512, 512], DType::F32).to_device(&dev).unwrap();
    let mut busy = a.clone();
    for _ in 0..8 {
        busy = busy.matmul(&a).unwrap().mul_scalar(1e-2).unwrap();
    }
    // 256 KiB batches go on the copy stream. Each is read by a kernel and dropped at once, so
    // its block is released while that kernel is still queued: a block handed to a later
    // upload before the kernel ran would change an earlier result.
    let batches: Vec<Tensor> = (0..32)
        .map(|i| randn(100 + i, &[64, 1024], DType::F32))
        .collect();
    let doubled: Vec<Tensor> = batches
        .iter()
        .map(|b| b.to_device(&dev).unwrap().mul_scalar(2.0).unwrap())
        .collect();
    for (i, (b, d)) in batches.iter().zip(&doubled).enumerate() {
        let want: Vec<f32> = b.to_vec::<f32>().unwrap().iter().map(|x| 2.0 * x).collect();
        assert_eq!(d.to_vec::<f32>().unwrap(), want, "batch {i}");
    }
    assert!(
        busy.sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .is_finite()
    );
    // With the stream drained, an upload of the same size reuses an idle copy-pool block.
    dev.synchronize().unwrap();
    let warm = backend.memory_stats();
    for b in &batches[..16] {
        let x = b.to_device(&dev).unwrap();
        assert_eq!(x.dims(), b.dims());
        drop(x);
        dev.synchronize().unwrap();
    }
    let after = backend.memory_stats();
    println!(
        "copy-stream uploads: {} driver allocations for 16 batches after warm-up, {} reuses",
        after.driver_allocs - warm.driver_allocs,
        after.reuses - warm.reuses
    );
    assert!(after.driver_allocs - warm.driver_allocs <= 1);
    assert!(after.reuses - warm.reuses >= 15);
    assert_eq!(after.allocated, warm.allocated, "memory is flat");
}
