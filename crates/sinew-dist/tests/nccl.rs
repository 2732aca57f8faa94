//! The NCCL backend on one GPU (world size 1, as issue 15 asks of a one-GPU machine): every
//! collective on f32/f64/f16/bf16 through the communicator, and DistributedDataParallel on the
//! GPU with NCCL giving the plain model's gradients. Needs libnccl.so.2 (`SINEW_NCCL_LIB`, e.g.
//! PyTorch's `nvidia/nccl/lib/libnccl.so.2`). The multi-process runs are in `mpirun.rs` (MPI).

#![cfg(feature = "nccl")]

use std::net::TcpListener;
use std::time::Duration;

use sinew_dist::{
    Backend, DistributedDataParallel, LaunchInfo, Launcher, NcclBackend, ProcessGroup, ReduceOp,
};
use sinew_nn::{Linear, Module, ModuleExt};
use sinew_tensor::{DType, Device, Tensor, manual_seed};

/// A free loopback port for rank 0's rendezvous.
fn master() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn group() -> ProcessGroup {
    let info = LaunchInfo {
        launcher: Launcher::Torchrun,
        rank: 0,
        world_size: 1,
        local_rank: 0,
        master: Some(master()),
    };
    let timeout = Duration::from_secs(60);
    ProcessGroup::new(
        move || NcclBackend::init(&info, timeout).map(|b| Box::new(b) as Box<dyn Backend>),
        timeout,
    )
    .expect("an NCCL communicator on cuda:0")
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn every_collective_runs_through_nccl() {
    let group = group();
    assert_eq!(
        (group.backend(), group.rank(), group.world_size()),
        ("nccl", 0, 1)
    );
    let gpu = Device::cuda(0).unwrap();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 64.0).collect();
        let t = Tensor::from_vec(values.clone(), [10, 100])
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
            .to_device(&gpu)
            .unwrap();
        let before = t.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            group.all_reduce(&t, op).unwrap();
        }
        // A strided view goes through a contiguous copy, written back into place.
        group.all_reduce(&t.t().unwrap(), ReduceOp::Sum).unwrap();
        group.broadcast(&t, 0).unwrap();
        let gathered = group.all_gather(&t).unwrap();
        assert_eq!(gathered.len(), 1);
        let after = t.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(
            after, before,
            "{dtype}: a world of one leaves values as they are"
        );
        let g = gathered[0]
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(g, before, "{dtype} all_gather");
        println!("nccl {dtype}: all_reduce (4 ops), broadcast, all_gather ok");
    }
    group.barrier().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn ddp_on_the_gpu_with_nccl_gives_the_plain_gradients() {
    let group = group();
    let gpu = Device::cuda(0).unwrap();
    manual_seed(3);
    let plain = Linear::new(64, 10).unwrap();
    plain.to_device(&gpu).unwrap();
    let twin = Linear::new(64, 10).unwrap();
    twin.load_state_dict(&plain.state_dict(), true).unwrap();
    twin.to_device(&gpu).unwrap();
    let ddp = DistributedDataParallel::new(twin, &group).unwrap();
    let x = Tensor::randn([32, 64], DType::F32, &Device::cpu())
        .unwrap()
        .to_device(&gpu)
        .unwrap();
    // The same loss through the plain model and through the wrapper (gradients all-reduced).
    let mean_square = |y: Tensor| y.square().unwrap().mean_all().unwrap();
    mean_square(plain.forward(&x).unwrap()).backward().unwrap();
    mean_square(ddp.forward(&x).unwrap()).backward().unwrap();
    for ((name, p), (_, q)) in plain.named_parameters().iter().zip(ddp.named_parameters()) {
        let a = p.grad().unwrap().to_vec::<f32>().unwrap();
        let b = q.grad().unwrap().to_vec::<f32>().unwrap();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        println!("ddp+nccl {name}: max gradient difference {worst:e}");
        assert!(worst < 1e-6, "{name}: {worst}");
    }
    // Reduced where they live: the gradients are views of one bucket on the GPU.
    let grads: Vec<Tensor> = ddp
        .named_parameters()
        .iter()
        .map(|(_, p)| p.grad().unwrap())
        .collect();
    assert!(
        grads
            .iter()
            .all(|g| g.device() == &gpu && g.same_storage(&grads[0]))
    );
}
