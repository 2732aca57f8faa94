//! A residual connection's `relu(a + b)` on the GPU: one kernel (`add_relu_<dtype>`) forward,
//! bit for bit the CPU's fused pass and `add` then `relu` on either device, and the gradients of
//! that two-op form, on contiguous, transposed, stepped and broadcast operands holding NaN,
//! infinities and signed zeros.

#![cfg(feature = "cuda")]

mod common;

use common::{bits, check, gpu, kernel_launches, poison, randn, tol};
use sinew_tensor::{DType, Device, Tensor};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// A `[rows, cols]` tensor of standard normal values with NaN, +inf, -inf, -0 and +0 sprinkled in
/// (every 11th, 13th, 17th, 19th and 23rd position).
fn with_specials(seed: u64, rows: usize, cols: usize, dtype: DType) -> Tensor {
    let mut v = randn(seed, &[rows * cols], DType::F64)
        .to_vec_f64()
        .unwrap();
    for (i, x) in v.iter_mut().enumerate() {
        *x = match i {
            _ if i % 11 == 3 => f64::NAN,
            _ if i % 13 == 4 => f64::INFINITY,
            _ if i % 17 == 5 => f64::NEG_INFINITY,
            _ if i % 19 == 6 => -0.0,
            _ if i % 23 == 7 => 0.0,
            _ => *x,
        };
    }
    Tensor::from_vec(v, [rows, cols])
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Operand pairs of the broadcast shape [37, 53]: both contiguous (with exact cancellations
/// `a + (-a)`), a transposed lhs, a stepped rhs, a broadcast row and a broadcast column.
fn pairs(dtype: DType) -> Vec<(&'static str, Tensor, Tensor)> {
    let (r, c) = (37, 53);
    let a = with_specials(1, r, c, dtype);
    let transposed = with_specials(2, c, r, dtype).t().unwrap();
    let stepped = with_specials(3, r, 2 * c, dtype)
        .slice(1, 0, 2 * c, 2)
        .unwrap();
    vec![
        ("contiguous", a.clone(), cancelling(&a)),
        ("transposed", transposed, a.clone()),
        ("stepped", a.clone(), stepped),
        ("row", a.clone(), with_specials(4, 1, c, dtype)),
        ("column", with_specials(5, r, 1, dtype), a),
    ]
}

/// `-a` at every 5th position (so `a + this` is an exact zero there), normal values elsewhere.
fn cancelling(a: &Tensor) -> Tensor {
    let keep: Vec<bool> = (0..a.elem_count()).map(|i| i % 5 == 0).collect();
    let keep = Tensor::from_vec(keep, a.shape().clone()).unwrap();
    let other = randn(9, a.dims(), a.dtype());
    keep.where_cond(&a.neg().unwrap(), &other).unwrap()
}

/// Asserts equal values bit for bit, signed zeros included, any NaN matching any NaN (x86 and
/// the GPU produce NaNs with different payloads).
fn same(what: &str, want: &Tensor, got: &Tensor) {
    assert_eq!(want.dims(), got.dims(), "{what}: shape");
    for (i, (w, g)) in bits(want).into_iter().zip(bits(got)).enumerate() {
        let (wf, gf) = (f64::from_bits(w), f64::from_bits(g));
        let equal = w == g || (wf.is_nan() && gf.is_nan());
        assert!(equal, "{what}: element {i} is {gf:e}, want {wf:e}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn add_relu_is_one_kernel_with_the_values_of_add_then_relu() {
    let dev = gpu();
    for dtype in FLOATS {
        for (name, a, b) in pairs(dtype) {
            let what = format!("add_relu {dtype} {name}");
            let two_ops = a.add(&b).unwrap().relu().unwrap();
            let fused_cpu = a.add_relu(&b).unwrap();
            same(&format!("{what}: CPU"), &two_ops, &fused_cpu);
            let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
            // Warm-up: the first launch of a kernel may load its module.
            ga.add_relu(&gb).unwrap();
            poison(&dev, two_ops.elem_count() * dtype.size_in_bytes());
            let before = kernel_launches(&dev);
            let fused_gpu = ga.add_relu(&gb).unwrap();
            assert_eq!(kernel_launches(&dev) - before, 1, "{what}: kernels");
            same(&format!("{what}: GPU"), &two_ops, &fused_gpu);
            let two_ops_gpu = ga.add(&gb).unwrap().relu().unwrap();
            same(&format!("{what}: GPU two ops"), &two_ops, &two_ops_gpu);
            let nans = bits(&two_ops)
                .iter()
                .filter(|&&x| f64::from_bits(x).is_nan())
                .count();
            assert!(nans > 0, "{what}: the case must carry NaN through");
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn add_relu_gradients_are_those_of_add_then_relu() {
    let dev = gpu();
    for dtype in FLOATS {
        for (name, a, b) in pairs(dtype) {
            let what = format!("add_relu backward {dtype} {name}");
            let g = randn(7, &[37, 53], dtype);
            let grads = |device: &Device, fused: bool| {
                let a = a.to_device(device).unwrap().requires_grad_();
                let b = b.to_device(device).unwrap().requires_grad_();
                let y = if fused {
                    a.add_relu(&b).unwrap()
                } else {
                    a.add(&b).unwrap().relu().unwrap()
                };
                let g = g.to_device(device).unwrap();
                y.backward_with(Some(g), Default::default()).unwrap();
                let host = |t: &Tensor| t.grad().unwrap().to_device(&Device::cpu()).unwrap();
                (host(&a), host(&b))
            };
            let (want_a, want_b) = grads(&Device::cpu(), false);
            let (cpu_a, cpu_b) = grads(&Device::cpu(), true);
            same(&format!("{what}: CPU lhs"), &want_a, &cpu_a);
            same(&format!("{what}: CPU rhs"), &want_b, &cpu_b);
            let (gpu_a, gpu_b) = grads(&dev, true);
            // Broadcast operands' gradients are sums, in another order on the GPU.
            let sum_tol = 4.0 * tol(dtype);
            check(&format!("{what} lhs"), &want_a, &gpu_a, sum_tol);
            check(&format!("{what} rhs"), &want_b, &gpu_b, sum_tol);
        }
    }
}
