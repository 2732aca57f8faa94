//! GPU parity of the indexing kernels (index_select, gather, scatter, scatter_add) and of i64
//! division against the CPU backend: every dtype, strided sources and indices, awkward sizes,
//! outputs poisoned, and out-of-range indices giving the CPU's exact error.

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, kernel_launches, randn};
use sinew_tensor::{DType, Device, Generator, Tensor};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];
const ALL: [DType; 7] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::F64,
    DType::I64,
    DType::U8,
    DType::Bool,
];

/// Values of `dtype` with some spread (bools from the sign, u8 from |x| * 40).
fn values(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    let x = randn(seed, shape, DType::F64).mul_scalar(40.0).unwrap();
    match dtype {
        DType::Bool => x.gt_scalar(0.0).unwrap(),
        DType::U8 => x.abs().unwrap().to_dtype(DType::U8).unwrap(),
        _ => x.div_scalar(10.0).unwrap().to_dtype(dtype).unwrap(),
    }
}

/// Uniform i64 indices in `[0, high)`.
fn indices(seed: u64, shape: &[usize], high: usize) -> Tensor {
    Generator::new(seed)
        .randint(shape.to_vec(), 0, high as i64, &Device::cpu())
        .unwrap()
}

/// A [37, 53, 6] source as three layouts: contiguous, permuted and stepped.
fn sources(seed: u64, dtype: DType) -> Vec<(&'static str, Tensor)> {
    let permuted = values(seed + 1, &[6, 37, 53], dtype)
        .permute(&[1, 2, 0])
        .unwrap();
    let stepped = values(seed + 2, &[40, 53, 13], dtype)
        .slice(2, 1, 13, 2)
        .unwrap()
        .narrow(0, 2, 37)
        .unwrap();
    vec![
        ("contiguous", values(seed, &[37, 53, 6], dtype)),
        ("permuted", permuted),
        ("stepped", stepped),
    ]
}

/// Both results must be identical (data movement only).
fn exact(what: &str, cpu: &Tensor, gpu: &Tensor) {
    check(what, cpu, gpu, 0.0);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn index_select_and_gather_match_the_cpu() {
    let dev = gpu();
    for dtype in ALL {
        let mut cases = 0;
        for (name, x) in sources(3, dtype) {
            for dim in 0..3 {
                let size = x.dims()[dim];
                // A plain index and a stepped view of a longer one.
                let plain = indices(10 + dim as u64, &[29], size);
                let stepped = indices(20 + dim as u64, &[61], size)
                    .slice(0, 1, 61, 2)
                    .unwrap();
                for idx in [&plain, &stepped] {
                    let (c, g) = both(&dev, &[&x, idx], |t| t[0].index_select(dim as isize, &t[1]));
                    exact(&format!("index_select {dtype} {name} dim {dim}"), &c, &g);
                    cases += 1;
                }
                // gather: an index smaller than the source off `dim`, also transposed.
                let mut shape = x.dims().to_vec();
                shape[dim] = 23;
                shape[(dim + 1) % 3] -= 2;
                let idx = indices(30 + dim as u64, &shape, size);
                let (c, g) = both(&dev, &[&x, &idx], |t| t[0].gather(dim as isize, &t[1]));
                exact(&format!("gather {dtype} {name} dim {dim}"), &c, &g);
                let mut flipped = shape.clone();
                flipped.swap(0, 2);
                let idx_t = indices(40 + dim as u64, &flipped, size)
                    .permute(&[2, 1, 0])
                    .unwrap();
                let (c, g) = both(&dev, &[&x, &idx_t], |t| t[0].gather(dim as isize, &t[1]));
                exact(
                    &format!("gather {dtype} {name} dim {dim} (strided index)"),
                    &c,
                    &g,
                );
                cases += 2;
            }
        }
        println!("index_select/gather {dtype}: max error 0 (exact) over {cases} cases");
    }
    // Cross-entropy's pattern: one label per row of [37, 10] log-probabilities.
    let logp = randn(50, &[37, 10], DType::F32);
    let labels = indices(51, &[37, 1], 10);
    let (c, g) = both(&dev, &[&logp, &labels], |t| t[0].gather(1, &t[1]));
    exact("gather labels", &c, &g);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn scatter_replace_is_deterministic_and_matches_the_cpu() {
    let dev = gpu();
    for dtype in ALL {
        for (name, base) in sources(60, dtype) {
            for dim in 0..3 {
                let size = base.dims()[dim];
                let mut shape = base.dims().to_vec();
                shape[dim] = 31; // more writes than slots along dims of 6: collisions everywhere
                shape[(dim + 2) % 3] -= 1;
                let idx = indices(70 + dim as u64, &shape, size);
                // Values larger than the index (read over its extent), as a transposed view.
                let mut vshape = shape.clone();
                vshape[(dim + 1) % 3] += 3;
                vshape.reverse();
                let vals = values(80, &vshape, dtype).permute(&[2, 1, 0]).unwrap();
                let (c, g) = both(&dev, &[&base, &idx, &vals], |t| {
                    t[0].scatter(dim as isize, &t[1], &t[2])
                });
                exact(&format!("scatter {dtype} {name} dim {dim}"), &c, &g);
                // One write per slot: the single-pass path.
                shape[dim] = 1;
                let one = indices(90 + dim as u64, &shape, size);
                let (c, g) = both(&dev, &[&base, &one, &vals], |t| {
                    t[0].scatter(dim as isize, &t[1], &t[2])
                });
                exact(
                    &format!("scatter {dtype} {name} dim {dim} (one per slot)"),
                    &c,
                    &g,
                );
            }
        }
        println!("scatter {dtype}: max error 0 (exact)");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn scatter_add_matches_the_cpu() {
    // Floats add each slot's values in position order (sorted by slot, no atomics), i64 adds
    // atomically (order-free): both equal the CPU's sequential sums exactly.
    let dev = gpu();
    for dtype in FLOATS.into_iter().chain([DType::I64]) {
        for (name, base) in sources(100, dtype) {
            for dim in 0..3 {
                let size = base.dims()[dim];
                let mut shape = base.dims().to_vec();
                shape[dim] = 17;
                shape[(dim + 1) % 3] -= 4;
                let idx = indices(110 + dim as u64, &shape, size);
                let vals = values(120, &shape, dtype);
                let (c, g) = both(&dev, &[&base, &idx, &vals], |t| {
                    t[0].scatter_add(dim as isize, &t[1], &t[2])
                });
                exact(&format!("scatter_add {dtype} {name} dim {dim}"), &c, &g);
            }
        }
        // Many positions on few slots (long runs), from a stepped values view.
        let base = values(140, &[3, 5], dtype);
        let idx = indices(141, &[3, 400], 5);
        let vals = values(142, &[3, 800], dtype).slice(1, 0, 800, 2).unwrap();
        let (c, g) = both(&dev, &[&base, &idx, &vals], |t| {
            t[0].scatter_add(1, &t[1], &t[2])
        });
        exact(&format!("scatter_add {dtype} long runs"), &c, &g);
    }
    let bytes = values(130, &[5, 4], DType::U8).to_device(&dev).unwrap();
    let idx = indices(131, &[5, 4], 5).to_device(&dev).unwrap();
    assert!(
        bytes.scatter_add(0, &idx, &bytes).is_err(),
        "u8 scatter_add"
    );
}

/// The CPU's error and the GPU's, as text. The GPU reports index errors at the next
/// synchronisation, here the download of the result.
fn errors(dev: &Device, inputs: &[&Tensor], f: impl Fn(&[Tensor]) -> sinew_tensor::Result<Tensor>) {
    let cpu = f(&inputs.iter().map(|t| (*t).clone()).collect::<Vec<_>>());
    let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(dev).unwrap()).collect();
    let gpu = f(&on_gpu).and_then(|t| t.to_device(&Device::cpu()));
    let (Err(c), Err(g)) = (cpu, gpu) else {
        panic!("expected both to fail");
    };
    assert_eq!(c.to_string(), g.to_string());
    println!("same error on both: {g}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn out_of_range_indices_are_the_cpus_errors() {
    let dev = gpu();
    let x = randn(140, &[9, 7], DType::F32);
    let bad = Tensor::from_vec(vec![1i64, 8, 9, 3, -1, 12], [6]).unwrap();
    errors(&dev, &[&x, &bad], |t| t[0].index_select(0, &t[1]));
    let bad2 = Tensor::from_vec(vec![0i64, 6, 2, 7, 1, -3, 4, 5], [2, 4]).unwrap();
    errors(&dev, &[&x, &bad2], |t| t[0].gather(1, &t[1]));
    errors(&dev, &[&x, &bad2.t().unwrap()], |t| t[0].gather(0, &t[1]));
    let vals = randn(141, &[2, 4], DType::F32);
    errors(&dev, &[&x, &bad2, &vals], |t| t[0].scatter(1, &t[1], &t[2]));
    errors(&dev, &[&x, &bad2, &vals], |t| {
        t[0].scatter_add(1, &t[1], &t[2])
    });
    // An empty output still checks its indices.
    let empty = Tensor::zeros([0, 7], DType::F32, &Device::cpu()).unwrap();
    errors(&dev, &[&empty, &bad], |t| t[0].index_select(1, &t[1]));
    // Valid indices after a failure work (the error slot is per call).
    let good = Tensor::from_vec(vec![8i64, 0, 3], [3]).unwrap();
    let (c, g) = both(&dev, &[&x, &good], |t| t[0].index_select(0, &t[1]));
    exact("index_select after an error", &c, &g);
}

/// Index errors cost no synchronisation at the call: the op returns, later ops queue behind it,
/// and the first failure in queue order is reported once, by the next synchronisation.
#[test]
#[ignore = "needs a CUDA GPU"]
fn index_errors_wait_for_the_next_synchronisation() {
    let dev = gpu();
    let x = randn(150, &[9, 7], DType::F32).to_device(&dev).unwrap();
    let first = Tensor::from_vec(vec![2i64, 11], [2])
        .unwrap()
        .to_device(&dev)
        .unwrap();
    let second = Tensor::from_vec(vec![-4i64], [1])
        .unwrap()
        .to_device(&dev)
        .unwrap();
    let a = x.index_select(0, &first).expect("no error at the call");
    let b = x.index_select(0, &second).expect("no error at the call");
    let sum = a.sum_all().unwrap().add(&b.sum_all().unwrap()).unwrap();
    let err = dev.synchronize().unwrap_err().to_string();
    let cpu_err = randn(150, &[9, 7], DType::F32)
        .index_select(0, &Tensor::from_vec(vec![2i64, 11], [2]).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(err, cpu_err, "the first queued failure");
    println!("deferred index error: {err}");
    // Reported once: the device works on, and the failed op's dependants still download.
    dev.synchronize().unwrap();
    assert!(sum.to_vec::<f32>().is_ok());
    let good = Tensor::from_vec(vec![8i64, 0], [2])
        .unwrap()
        .to_device(&dev)
        .unwrap();
    assert_eq!(x.index_select(0, &good).unwrap().dims(), &[2, 7]);
    // A loop that never synchronises stays bounded: old slots are checked past 256 pending.
    let cols = Tensor::from_vec(vec![3i64, 0], [2, 1])
        .unwrap()
        .to_device(&dev)
        .unwrap();
    for _ in 0..600 {
        x.gather(1, &cols).unwrap();
    }
    dev.synchronize().unwrap();
}

/// A download is a synchronisation point that reads the pending index checks in its own wait:
/// the first queued fault comes back from `to_vec` as the CPU's error, and the host waits for
/// the stream once, for a download through the pinned buffer and for one past the staging
/// limit (64 MiB), which goes straight to its destination; the next download brings the data.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_download_reports_pending_index_errors_in_its_own_wait() {
    let dev = gpu();
    let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
    let host = randn(152, &[9, 7], DType::F32);
    let x = host.to_device(&dev).unwrap();
    let bad = Tensor::from_vec(vec![5i64, -9], [2, 1]).unwrap();
    let cpu_err = host.gather(1, &bad).unwrap_err().to_string();
    let bad = bad.to_device(&dev).unwrap();
    // 68 MiB, past the staging limit.
    let big: Vec<f32> = (0..17usize << 20).map(|i| (i % 1000) as f32).collect();
    let big_host = Tensor::from_vec(big, [17usize << 20]).unwrap();
    let big_gpu = big_host.to_device(&dev).unwrap();
    for (what, data, want) in [("small", &x, &host), ("large", &big_gpu, &big_host)] {
        x.gather(1, &bad).expect("no error at the call");
        let waits = cuda.stream_synchronizations();
        let err = data.to_vec::<f32>().unwrap_err().to_string();
        assert_eq!(err, cpu_err, "{what}: the queued fault");
        assert_eq!(
            cuda.stream_synchronizations() - waits,
            1,
            "{what}: one wait"
        );
        let waits = cuda.stream_synchronizations();
        let got = data.to_vec::<f32>().expect("reported once");
        assert_eq!(
            cuda.stream_synchronizations() - waits,
            1,
            "{what}: one wait"
        );
        assert!(got == want.to_vec::<f32>().unwrap(), "{what}: the data");
    }
}

/// An index op queues only its own kernel: its failure slot comes from a ring set up by one fill
/// per 256 slots, and the bad index is recorded by the op's kernel itself. A fault in any slot,
/// the ring it is in full or not, comes back at the next synchronisation with the CPU's error.
#[test]
#[ignore = "needs a CUDA GPU"]
fn index_checks_queue_no_kernels_of_their_own() {
    let dev = gpu();
    let host = randn(151, &[9, 7], DType::F32);
    let x = host.to_device(&dev).unwrap();
    let cols = Tensor::from_vec(vec![3i64, 0], [2, 1]).unwrap();
    let bad = Tensor::from_vec(vec![5i64, -9], [2, 1]).unwrap();
    let cpu_err = host.gather(1, &bad).unwrap_err().to_string();
    let (cols, bad) = (cols.to_device(&dev).unwrap(), bad.to_device(&dev).unwrap());
    let before = kernel_launches(&dev);
    // 512 slots from wherever the ring stands: exactly two new rings.
    for k in 0..512 {
        x.gather(1, if k == 300 { &bad } else { &cols }).unwrap();
        if k % 128 == 127 {
            let checked = dev.synchronize();
            if k == 383 {
                assert_eq!(checked.unwrap_err().to_string(), cpu_err, "op {k}");
            } else {
                checked.unwrap();
            }
        }
    }
    assert_eq!(
        kernel_launches(&dev) - before,
        512 + 2,
        "one gather kernel an op"
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn i64_division_matches_the_cpu() {
    let dev = gpu();
    let mut state = 12345u64;
    let mut next = move |zero_ok: bool| loop {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = (state >> 33) as i64 % 2001 - 1000;
        if zero_ok || v != 0 {
            return v;
        }
    };
    let mut lhs: Vec<i64> = (0..37 * 53).map(|_| next(true) * 1000).collect();
    let mut rhs: Vec<i64> = (0..53).map(|_| next(false) % 13).collect();
    rhs.iter_mut().filter(|v| **v == 0).for_each(|v| *v = -1);
    lhs[0] = i64::MIN;
    rhs[0] = -1;
    let a = Tensor::from_vec(lhs, [37, 53]).unwrap();
    let b = Tensor::from_vec(rhs, [53]).unwrap();
    let (c, g) = both(&dev, &[&a, &b], |t| t[0].div_trunc(&t[1]));
    assert_eq!(c.to_vec::<i64>().unwrap(), g.to_vec::<i64>().unwrap());
    let (c, g) = both(&dev, &[&a.t().unwrap(), &b.unsqueeze(1).unwrap()], |t| {
        t[0].div_trunc(&t[1])
    });
    assert_eq!(c.to_vec::<i64>().unwrap(), g.to_vec::<i64>().unwrap());
    let zeros = Tensor::from_vec(vec![3i64, 0, 5], [3]).unwrap();
    errors(&dev, &[&a.narrow(1, 0, 3).unwrap(), &zeros], |t| {
        t[0].div_trunc(&t[1])
    });
    println!("div i64: max error 0 (exact), i64::MIN / -1 wraps");
}
