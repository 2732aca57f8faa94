//! index_select's gradient on the GPU (an embedding's backward): the rows that share an index are
//! summed in position order, so the result must equal the CPU's sequential scatter-add bit for
//! bit, in every float dtype, for row counts that take one, two and three radix passes, along
//! inner and outer dims, from contiguous and strided output gradients, and stay differentiable.

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, poison, randn};
use sinew_tensor::{BackwardOptions, DType, Device, Generator, Tensor};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// `n` i64 indices in `[0, rows)`, a third of them one hot row (as padding or a frequent token
/// makes them), so long runs of one index are summed.
fn repeated_indices(seed: u64, n: usize, rows: usize) -> Tensor {
    let cpu = Device::cpu();
    let uniform = Generator::new(seed)
        .randint([n], 0, rows as i64, &cpu)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let hot = (rows / 2) as i64;
    let ids: Vec<i64> = uniform
        .iter()
        .enumerate()
        .map(|(p, &i)| if p % 3 == 1 { hot } else { i })
        .collect();
    Tensor::from_vec(ids, [n]).unwrap()
}

/// The gradient of `x.index_select(dim, idx)` under the output gradient `upstream`, computed on
/// `device` (inputs moved there, memory poisoned first) and returned on the host.
fn index_select_grad(
    device: &Device,
    x: &Tensor,
    dim: usize,
    idx: &Tensor,
    upstream: &Tensor,
) -> Tensor {
    let x = x.to_device(device).unwrap().requires_grad_();
    let (idx, upstream) = (
        idx.to_device(device).unwrap(),
        upstream.to_device(device).unwrap(),
    );
    if !device.is_cpu() {
        poison(device, x.elem_count() * x.dtype().size_in_bytes());
    }
    let y = x.index_select(dim as isize, &idx).unwrap();
    y.backward_with(Some(upstream), BackwardOptions::default())
        .unwrap();
    let g = x.grad().expect("the input gets a gradient");
    assert_eq!(g.device(), device);
    g.to_device(&Device::cpu()).unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn index_select_grad_is_the_cpus_sum_bit_for_bit() {
    let dev = gpu();
    // (input shape, dim, indices): 200 rows (one radix pass), 300 (two), 70,000 (three); the
    // middle dim of a 3-d input (outer and inner dims); more positions than rows and fewer.
    let cases: [(&[usize], usize, usize); 5] = [
        (&[200, 7], 0, 1000),
        (&[300, 16], 0, 2500),
        (&[70_000, 3], 0, 600),
        (&[3, 50, 4], 1, 300),
        (&[5, 9], 1, 4),
    ];
    for dtype in FLOATS {
        for (k, &(shape, dim, n)) in cases.iter().enumerate() {
            let seed = 10 * k as u64;
            let x = randn(seed, shape, dtype);
            let idx = repeated_indices(seed + 1, n, shape[dim]);
            let mut out_shape = shape.to_vec();
            out_shape[dim] = n;
            let upstream = randn(seed + 2, &out_shape, dtype);
            let what = format!("index_select grad {dtype} {shape:?} dim {dim} n {n}");
            let cpu = index_select_grad(&Device::cpu(), &x, dim, &idx, &upstream);
            let on_gpu = index_select_grad(&dev, &x, dim, &idx, &upstream);
            check(&what, &cpu, &on_gpu, 0.0);
            // The same from a strided output gradient (a transposed copy's view).
            let last = out_shape.len() as isize - 1;
            let strided = upstream
                .transpose(0, last)
                .unwrap()
                .contiguous()
                .unwrap()
                .transpose(0, last)
                .unwrap();
            assert!(!strided.layout().is_contiguous());
            let on_gpu = index_select_grad(&dev, &x, dim, &idx, &strided);
            check(&format!("{what}, strided"), &cpu, &on_gpu, 0.0);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn index_select_grad_is_differentiable_and_handles_empty_indices() {
    let dev = gpu();
    // With loss = sum(index_select(x) * up), grad_x (built with create_graph) is index_select's
    // gradient of up; d sum(grad_x * w) / d up is w selected at the indices, on both devices.
    let run = |device: &Device| {
        let x = randn(1, &[6, 3], DType::F32)
            .to_device(device)
            .unwrap()
            .requires_grad_();
        let idx = repeated_indices(2, 9, 6).to_device(device).unwrap();
        let up = randn(3, &[9, 3], DType::F32)
            .to_device(device)
            .unwrap()
            .requires_grad_();
        let y = x.index_select(0, &idx).unwrap();
        let loss = y.mul(&up).unwrap().sum_all().unwrap();
        let options = BackwardOptions {
            create_graph: true,
            ..BackwardOptions::default()
        };
        loss.backward_with(None, options).unwrap();
        let gx = x.grad().unwrap();
        let w = randn(4, &[6, 3], DType::F32).to_device(device).unwrap();
        gx.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        up.grad().unwrap().to_device(&Device::cpu()).unwrap()
    };
    check("double backward", &run(&Device::cpu()), &run(&dev), 0.0);
    let empty = Tensor::zeros([0], DType::I64, &Device::cpu()).unwrap();
    let x = randn(5, &[4, 2], DType::F32);
    let up = Tensor::zeros([0, 2], DType::F32, &Device::cpu()).unwrap();
    let g = index_select_grad(&dev, &x, 0, &empty, &up);
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![0.0; 8]);
}
