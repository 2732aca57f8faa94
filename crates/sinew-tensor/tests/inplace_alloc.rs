//! An SGD-with-momentum step written with in-place ops performs no heap allocation.
//!
//! The global allocator of this test binary counts allocations while `COUNTING` is set (on
//! every thread, rayon's workers included). One test per binary, so nothing else runs
//! concurrently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sinew_tensor::{DType, Device, Generator, Tensor};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as in `alloc`; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Parameters, gradients and momentum buffers of the 784-512-512-10 MLP.
fn mlp_state() -> Vec<(Tensor, Tensor, Tensor)> {
    let mut g = Generator::new(0);
    let shapes: [&[usize]; 6] = [&[512, 784], &[512], &[512, 512], &[512], &[10, 512], &[10]];
    shapes
        .iter()
        .map(|&s| {
            let p = g.randn(s.to_vec(), DType::F32, &Device::cpu()).unwrap();
            let grad = g.randn(s.to_vec(), DType::F32, &Device::cpu()).unwrap();
            let buf = Tensor::zeros(s.to_vec(), DType::F32, &Device::cpu()).unwrap();
            (p, grad, buf)
        })
        .collect()
}

fn sgd_momentum_step(state: &[(Tensor, Tensor, Tensor)], lr: f64) {
    for (p, grad, buf) in state {
        buf.mul_scalar_(0.9).unwrap();
        buf.add_(grad).unwrap();
        p.axpy_(-lr, buf).unwrap();
    }
}

#[test]
fn sgd_momentum_step_allocates_nothing() {
    let state = mlp_state();
    let before: Vec<f32> = state[0].0.to_vec().unwrap();
    let lr = 0.01;
    // Warm-up: rayon's pool and thread-locals get initialised here.
    rayon::broadcast(|_| ());
    sgd_momentum_step(&state, lr);
    // The counter works: a control allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let control = std::hint::black_box(vec![1u8; 64]);
    COUNTING.store(false, Ordering::SeqCst);
    drop(control);
    assert!(ALLOCATIONS.swap(0, Ordering::SeqCst) >= 1);
    // Counted from inside a pool thread: kernels then split work onto the workers' own deques
    // instead of injecting jobs from outside (whose queue grows in blocks).
    let allocations = rayon::scope(|_| {
        let steps = 5;
        ALLOCATIONS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..steps {
            sgd_momentum_step(&state, lr);
        }
        COUNTING.store(false, Ordering::SeqCst);
        ALLOCATIONS.load(Ordering::SeqCst)
    });
    println!("allocations during 5 in-place SGD-momentum steps: {allocations}");
    assert_eq!(allocations, 0);
    // The steps did run: 6 steps of momentum from zero on a fixed gradient.
    let after: Vec<f32> = state[0].0.to_vec().unwrap();
    let grad: Vec<f32> = state[0].1.to_vec().unwrap();
    let factor: f64 = (1..=6).map(|k| (1.0 - 0.9f64.powi(k)) / 0.1).sum();
    for i in [0, 1000, 401_407] {
        let expect = before[i] as f64 - lr * factor * grad[i] as f64;
        assert!(
            (after[i] as f64 - expect).abs() < 1e-4,
            "{i}: {} vs {expect}",
            after[i]
        );
    }
    assert_eq!(state[0].0.version(), 6);
}
