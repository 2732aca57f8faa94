//! After the first step (which creates the state), Adam and SGD-with-momentum steps over an
//! MLP's parameters make no heap allocation, and gradient clipping copies no gradient. The global allocator counts the test thread's
//! allocations while its `COUNTING` flag is set (thread-local: rayon workers still starting up
//! from the forward pass allocate on their own threads, at times that vary from run to run).
//!
//! The MLP is small enough that the in-place kernels run on the calling thread. Above the
//! parallel threshold they hand chunks to rayon, whose global job queue allocates one block per
//! 63 jobs injected from outside the pool (about one small allocation per parameter per step
//! for Adam's ten kernels): amortised bookkeeping, never a buffer the size of a parameter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use sinew_nn::ModuleExt;
use sinew_nn::zoo::mlp;
use sinew_optim::{AdamConfig, Optimizer, SgdConfig, adam, sgd};
use sinew_tensor::{DType, Device, Tensor};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// The largest allocation counted (bytes).
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn count(bytes: usize) {
    // `try_with`: a thread being torn down has no flag, and is not the test thread.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LARGEST.fetch_max(bytes, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as in `alloc`; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn optimizer_steps_after_the_first_allocate_nothing() -> sinew_tensor::Result<()> {
    let model = mlp(&[64, 32, 10])?;
    let x = Tensor::rand([16, 64], DType::F32, &Device::cpu())?;
    model.forward_loss(&x)?;
    let mut optimizers: Vec<Box<dyn Optimizer>> = vec![
        Box::new(adam(
            model.named_parameters(),
            AdamConfig::new(1e-3).amsgrad(true).weight_decay(0.01),
        )),
        Box::new(sgd(
            model.named_parameters(),
            SgdConfig::new(0.1).momentum(0.9).nesterov(true),
        )),
    ];
    for opt in &mut optimizers {
        opt.step()?; // creates the state
        let before: Vec<f32> = model.parameters()[0].value().to_vec()?;
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.set(true);
        for _ in 0..5 {
            opt.step()?;
        }
        COUNTING.set(false);
        assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
        let after: Vec<f32> = model.parameters()[0].value().to_vec()?;
        assert_ne!(before, after, "the steps moved the parameters");
    }
    // The counter works: a control allocation is seen.
    COUNTING.set(true);
    let control = std::hint::black_box(Vec::from([1u8; 64]));
    COUNTING.set(false);
    assert_eq!(control.len(), 64);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 1);
    Ok(())
}

/// Clipping an MLP's gradients (a 400 KiB weight gradient among them) in f32 allocates no
/// buffer the size of a gradient: the joint norm is folded where the gradients lie (it made four
/// f64 copies of each) and the scaling is in place. Its small allocations (a few 0-d tensors
/// and lists of the gradients) stay under 4 KiB each.
#[test]
fn clipping_copies_no_gradient() -> sinew_tensor::Result<()> {
    let model = mlp(&[400, 256, 10])?;
    let x = Tensor::rand([8, 400], DType::F32, &Device::cpu())?;
    model.forward_loss(&x)?;
    let params = model.parameters();
    let before: Vec<f32> = params[0].grad().expect("a gradient").to_vec()?;
    for norm_type in [2.0, f64::INFINITY, 3.0] {
        LARGEST.store(0, Ordering::Relaxed);
        COUNTING.set(true);
        let total = sinew_optim::clip_grad_norm_(&params, 1e-3, norm_type, false)?;
        COUNTING.set(false);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest < 4096,
            "norm {norm_type}: an allocation of {largest} bytes"
        );
        let total = total.item()?;
        assert!(
            total.is_finite() && total > 0.0,
            "norm {norm_type}: total {total}"
        );
    }
    let after: Vec<f32> = params[0].grad().expect("a gradient").to_vec()?;
    assert_ne!(before, after, "clipping scaled the gradients");
    Ok(())
}

trait ForwardLoss {
    fn forward_loss(&self, x: &Tensor) -> sinew_tensor::Result<()>;
}

impl<M: sinew_nn::Module> ForwardLoss for M {
    /// One backward pass so every parameter has a gradient.
    fn forward_loss(&self, x: &Tensor) -> sinew_tensor::Result<()> {
        self.forward(x)?.square()?.mean_all()?.backward()
    }
}
