//! Deferred scalar reads (`DeferredScalar`: the loss scaler's inf/NaN flag) and fused steps
//! skipped on the device by such a flag (`Tensor::fused_step_many_` with `skip`): a read costs
//! no wait of its own but comes back with the next download or synchronize, and a set flag
//! leaves every operand of a step untouched while a clear one changes nothing of its values.

#![cfg(feature = "cuda")]

mod common;

use common::{gpu, kernel_launches, randn};
use sinew_tensor::{
    AdamStep, DType, DeferredScalar, Device, FusedStep, StepOperands, Tensor, no_grad,
};

fn waits(dev: &Device) -> u64 {
    sinew_cuda::CudaBackend::of(dev).map_or(0, |c| c.stream_synchronizations())
}

/// Reads of every dtype and of a view's element wait for nothing until some download (of
/// another tensor) or a synchronize brings them; a read nothing has brought waits once.
#[test]
#[ignore = "needs a CUDA GPU"]
fn deferred_reads_come_back_with_the_next_wait() {
    let dev = gpu();
    let row = Tensor::from_vec(vec![1.5f64, -2.25, 7.0, 3.0], [4]).unwrap();
    let other = randn(3, &[5, 5], DType::F32).to_device(&dev).unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64] {
        let t = row.to_dtype(dtype).unwrap().to_device(&dev).unwrap();
        t.mul_scalar_(2.0).unwrap(); // queued: the read sees the result
        let before = waits(&dev);
        let element = t.narrow(0, 1, 1).unwrap();
        let reads = [
            DeferredScalar::new(&element).unwrap(),
            DeferredScalar::new(&t.narrow(0, 2, 1).unwrap()).unwrap(),
        ];
        assert_eq!(waits(&dev), before, "{dtype}: queuing waits for nothing");
        assert!(reads.iter().all(|r| r.try_get().is_none()), "{dtype}");
        other.to_vec::<f32>().unwrap();
        assert_eq!(waits(&dev) - before, 1, "{dtype}: one wait for all");
        let want = if dtype == DType::I64 {
            [-4.0, 14.0]
        } else {
            [-4.5, 14.0]
        };
        assert_eq!(
            reads.each_ref().map(|r| r.try_get()),
            want.map(Some),
            "{dtype}"
        );
        // A synchronize brings them too; a read nothing brought waits once.
        let synced = DeferredScalar::new(&element).unwrap();
        dev.synchronize().unwrap();
        assert_eq!(synced.try_get(), Some(want[0]), "{dtype}: synchronize");
        let alone = DeferredScalar::new(&element).unwrap();
        let before = waits(&dev);
        assert_eq!(alone.get().unwrap(), want[0], "{dtype}");
        assert_eq!(waits(&dev) - before, 1, "{dtype}: get waits once");
        assert_eq!(alone.get().unwrap(), want[0], "{dtype}: kept");
        assert_eq!(waits(&dev) - before, 1, "{dtype}: no second wait");
    }
    let err = DeferredScalar::new(&other).unwrap_err().to_string();
    assert!(err.contains("not 1"), "{err}");
}

/// Adam's multi-tensor step under a skip flag: set, the launch writes no operand (bit for
/// bit); clear, its results equal those of the launch without a flag; a flag of another dtype
/// or device is an error, and the CPU, which has no such kernel, declines.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_set_skip_flag_leaves_a_fused_step_unwritten() {
    let dev = gpu();
    let _guard = no_grad();
    let step = FusedStep::Adam(AdamStep {
        lr: 0.01,
        betas: (0.9, 0.999),
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
        amsgrad: false,
        maximize: false,
        step: 1,
    });
    let shapes: [&[usize]; 2] = [&[7, 3], &[11]];
    let make = |d: &Device| -> Vec<[Tensor; 4]> {
        shapes
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let seed = 10 * k as u64;
                [
                    randn(seed, s, DType::F32).to_device(d).unwrap(),
                    randn(seed + 1, s, DType::F32).to_device(d).unwrap(),
                    randn(seed + 2, s, DType::F32)
                        .abs()
                        .unwrap()
                        .to_device(d)
                        .unwrap(),
                    randn(seed + 3, s, DType::F32).to_device(d).unwrap(),
                ]
            })
            .collect()
    };
    let run = |sets: &[[Tensor; 4]], flag: Option<&Tensor>| {
        let buffers: Vec<[&Tensor; 2]> = sets.iter().map(|s| [&s[1], &s[2]]).collect();
        let operands: Vec<StepOperands<'_>> = sets
            .iter()
            .zip(&buffers)
            .map(|(s, b)| StepOperands {
                param: &s[0],
                buffers: b,
                grad: &s[3],
            })
            .collect();
        Tensor::fused_step_many_(&step, &operands, flag)
    };
    let host = |sets: &[[Tensor; 4]]| -> Vec<Vec<u32>> {
        (sets.iter().flatten())
            .map(|t| {
                t.to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            })
            .collect()
    };
    let start = host(&make(&dev));
    let (plain, skipped, cleared) = (make(&dev), make(&dev), make(&dev));
    assert!(run(&plain, None).unwrap());
    let set = Tensor::full([1], 1.0, DType::F32, &dev).unwrap();
    let before = kernel_launches(&dev);
    assert!(run(&skipped, Some(&set)).unwrap());
    assert_eq!(kernel_launches(&dev) - before, 1, "one launch");
    assert_eq!(host(&skipped), start, "a set flag writes nothing");
    let clear = Tensor::zeros([1], DType::F32, &dev).unwrap();
    assert!(run(&cleared, Some(&clear)).unwrap());
    assert_eq!(host(&cleared), host(&plain), "a clear flag changes nothing");
    assert_ne!(host(&plain), start);
    let f64_flag = Tensor::zeros([1], DType::F64, &dev).unwrap();
    let err = run(&cleared, Some(&f64_flag)).unwrap_err().to_string();
    assert!(err.contains("skip flag"), "{err}");
    let cpu = Device::cpu();
    let cpu_flag = Tensor::zeros([1], DType::F32, &cpu).unwrap();
    assert!(
        run(&cleared, Some(&cpu_flag)).is_err(),
        "a flag on another device"
    );
    assert!(
        !run(&make(&cpu), Some(&cpu_flag)).unwrap(),
        "the CPU declines"
    );
}
