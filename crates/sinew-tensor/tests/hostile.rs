//! Regression tests for a hostile user's inputs (run in release in CI:
//! `cargo test --release -p sinew-tensor --test hostile`). Every case must give an `Err` with a
//! clear message (or the right answer): no panic, no abort, no hang, no out-of-bounds read.
//!
//! Huge allocations are sized so they can never succeed (2^56 bytes or more, past any
//! address space), so the tests stay fast and cannot exhaust the machine's memory.

#[path = "hostile/creation.rs"]
mod creation;
#[path = "hostile/views.rs"]
mod views;
#[path = "hostile/windows.rs"]
mod windows;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use sinew_tensor::{DType, Device, Error, Tensor, cpu::CpuStorage, with_default_generator};

/// The error's message, or a panic naming what unexpectedly succeeded.
pub fn err_text<T: std::fmt::Debug>(r: sinew_tensor::Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// An f32 scalar (one element of storage) broadcast to `dims` with stride 0.
pub fn expanded(dims: &[usize]) -> Tensor {
    Tensor::scalar(1.0f32).expand(dims.to_vec()).unwrap()
}

#[test]
fn from_storage_checks_the_length_in_every_build() {
    // Used to wrap 4 values as [1000, 1000] in release builds; matmul then read far past them.
    let storage = Box::new(CpuStorage::F32(vec![0.0; 4]));
    let r = Tensor::from_storage(storage, [1000, 1000], Device::cpu());
    assert_eq!(
        err_text(r),
        "from_storage: 4 elements do not fill shape [1000, 1000]"
    );
    let storage = Box::new(CpuStorage::F32(vec![0.0; 4]));
    let r = Tensor::from_storage(storage, [1 << 32, 1 << 32], Device::cpu());
    assert_eq!(
        err_text(r),
        "from_storage: the element count of shape [4294967296, 4294967296] overflows the addressable size"
    );
    let ok = Tensor::from_storage(
        Box::new(CpuStorage::F32(vec![1.0, 2.0, 3.0, 4.0])),
        [2, 2],
        Device::cpu(),
    )
    .unwrap();
    assert_eq!(
        ok.matmul(&ok).unwrap().to_vec::<f32>().unwrap(),
        vec![7.0, 10.0, 15.0, 22.0]
    );
}

#[test]
fn element_counts_that_wrap_are_refused() {
    // 3 * 6148914691236517206 wraps to 2 in release: two values "filled" a giant shape.
    let r = Tensor::from_vec(vec![1.0f32, 2.0], [3, 6148914691236517206]);
    assert_eq!(
        err_text(r),
        "from_vec: the element count of shape [3, 6148914691236517206] overflows the addressable size"
    );
    // zeros([2^32, 2^32]) used to report 0 elements.
    let r = Tensor::zeros([1 << 32, 1 << 32], DType::F32, &Device::cpu());
    assert!(
        matches!(r, Err(Error::Overflow { op: "zeros", .. })),
        "{r:?}"
    );
    // A broadcast to 2^64 elements used to sum to 0.
    let r = Tensor::scalar(1.0f32).expand([1 << 32, 1 << 32]);
    assert_eq!(
        err_text(r),
        "broadcast_to: the element count of shape [4294967296, 4294967296] overflows the addressable size"
    );
}

#[test]
fn huge_allocations_are_out_of_memory_errors() {
    let cpu = Device::cpu();
    // zeros([2^62]) f32 is 2^64 bytes: an error, not a "capacity overflow" panic.
    assert_eq!(
        err_text(Tensor::zeros([1 << 62], DType::F32, &cpu)),
        "zeros: out of memory: cannot allocate 18446744073709551616 bytes"
    );
    // 2^56 f32 elements (2^58 bytes) passes the size checks and must fail in the allocator.
    let r = Tensor::ones([1 << 28, 1 << 28], DType::F32, &cpu);
    assert_eq!(
        err_text(r),
        "ones: out of memory: cannot allocate 288230376151711744 bytes"
    );
    // Materialising a huge broadcast view: sum, copy, elementwise ops, casts.
    let big = expanded(&[1 << 31, 1 << 31]);
    assert_eq!(
        err_text(big.sum_all()),
        "sum: out of memory: cannot allocate 18446744073709551616 bytes"
    );
    assert!(matches!(
        big.contiguous(),
        Err(Error::OutOfMemory {
            op: "contiguous",
            ..
        })
    ));
    assert!(matches!(
        big.exp(),
        Err(Error::OutOfMemory { op: "exp", .. })
    ));
    assert!(matches!(
        big.add(&big),
        Err(Error::OutOfMemory { op: "add", .. })
    ));
    assert!(matches!(
        big.to_dtype(DType::F64),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(matches!(
        big.to_vec::<f32>(),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(matches!(big.softmax(-1), Err(Error::OutOfMemory { .. })));
    assert!(matches!(
        big.argmax(0, false),
        Err(Error::OutOfMemory { .. })
    ));
    // Broadcasting two small operands to a huge output.
    let (a, b) = (expanded(&[1 << 28, 1]), expanded(&[1, 1 << 28]));
    assert!(matches!(
        a.mul(&b),
        Err(Error::OutOfMemory { op: "mul", .. })
    ));
}

#[test]
fn matmul_with_huge_dims_is_an_error() {
    let (a, b) = (expanded(&[1 << 28, 1]), expanded(&[1, 1 << 28]));
    assert_eq!(
        err_text(a.matmul(&b)),
        "matmul: out of memory: cannot allocate 288230376151711744 bytes"
    );
    let (a, b) = (expanded(&[1 << 32, 1]), expanded(&[1, 1 << 32]));
    assert_eq!(
        err_text(a.matmul(&b)),
        "matmul: the output size 1 x 4294967296 x 4294967296 overflows the addressable size"
    );
    // Batch dims that broadcast to 2^64 matrices.
    let (a, b) = (expanded(&[1 << 32, 1, 1, 1]), expanded(&[1, 1 << 32, 1, 1]));
    assert!(matches!(a.matmul(&b), Err(Error::Overflow { .. })));
    // Inner dims that disagree.
    let (a, b) = (expanded(&[2, 1 << 40]), expanded(&[1 << 41, 2]));
    assert_eq!(
        err_text(a.matmul(&b)),
        "matmul: shape mismatch between [2, 1099511627776] and [2199023255552, 2]"
    );
    // A huge inner dim with a small output works (every read is of the one stored element).
    let (a, b) = (expanded(&[1, 1 << 20]), expanded(&[1 << 20, 1]));
    assert_eq!(
        a.matmul(&b).unwrap().to_vec::<f32>().unwrap(),
        vec![(1u32 << 20) as f32]
    );
}

#[test]
fn cat_stack_and_pad_sizes_never_wrap() {
    let half = expanded(&[isize::MAX as usize]);
    let r = Tensor::cat(&[half.clone(), half.clone(), half.clone()], 0);
    assert!(
        err_text(r).starts_with("cat: the total size of dim 0"),
        "cat of three isize::MAX views"
    );
    assert!(matches!(
        Tensor::cat(&[half.clone(), half.clone()], 0),
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        Tensor::stack(&[half.clone(), half], 0),
        Err(Error::Overflow { .. })
    ));
    let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    assert_eq!(
        err_text(t.pad(&[(usize::MAX, 1)], sinew_tensor::PadMode::Constant(0.0))),
        "pad: the padded size 2 + 18446744073709551615 + 1 of dim 1 overflows the addressable size"
    );
    assert!(matches!(
        t.pad(&[(1 << 60, 0)], sinew_tensor::PadMode::Constant(0.0)),
        Err(Error::OutOfMemory { op: "full", .. })
    ));
    assert!(
        err_text(t.pad(&[(usize::MAX, 0)], sinew_tensor::PadMode::Reflect))
            .contains("reflect padding")
    );
}

#[test]
fn sum_of_bool_and_u8_counts_as_i64() {
    // torch.tensor([True, False, True]).sum() = tensor(2) (int64)
    let b = Tensor::from_vec(vec![true, false, true], [3]).unwrap();
    let s = b.sum_all().unwrap();
    assert_eq!(s.dtype(), DType::I64);
    assert_eq!(s.to_scalar::<i64>().unwrap(), 2);
    // torch.tensor([200, 100], dtype=torch.uint8).sum() = tensor(300) (no u8 wrap-around)
    let u = Tensor::from_vec(vec![200u8, 100], [2]).unwrap();
    assert_eq!(u.sum_all().unwrap().to_scalar::<i64>().unwrap(), 300);
    let m = Tensor::from_vec(vec![true, true, false, true], [2, 2]).unwrap();
    assert_eq!(
        m.sum(&[1], false).unwrap().to_vec::<i64>().unwrap(),
        vec![2, 1]
    );
}

#[test]
fn display_uses_scientific_notation_and_reads_only_what_it_shows() {
    // print(torch.tensor([1e-10])) = tensor([1.0000e-10])
    let t = Tensor::from_vec(vec![1e-10f32], [1]).unwrap();
    assert_eq!(t.to_string(), "tensor([1.0000e-10])");
    // print(torch.tensor([1e9, 1.])) = tensor([1.0000e+09, 1.0000e+00])
    let t = Tensor::from_vec(vec![1e9f32, 1.0], [2]).unwrap();
    assert_eq!(t.to_string(), "tensor([1.0000e+09, 1.0000e+00])");
    // A 1e8-element broadcast view prints at once (it used to copy the whole tensor first).
    let start = Instant::now();
    let s = expanded(&[10_000, 10_000]).to_string();
    let rows: Vec<&str> = s.lines().collect();
    assert_eq!(rows[0], "tensor([[1., 1., 1.,  ..., 1., 1., 1.],");
    assert_eq!(rows[3], "        ...,");
    assert_eq!(rows.len(), 7);
    // 2^40 elements: materialising would be an out-of-memory error, summarising is not.
    let s = expanded(&[1 << 20, 1 << 20]).to_string();
    assert!(
        s.starts_with("tensor([[1., 1., 1.,  ..., 1., 1., 1.],"),
        "{s}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn rand_inside_with_default_generator_does_not_deadlock() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let cpu = Device::cpu();
        let out = with_default_generator(|g| {
            let a = Tensor::rand([64], DType::F32, &cpu)?;
            let b = g.rand([64], DType::F32, &cpu)?;
            let c = with_default_generator(|h| h.randn([64], DType::F32, &cpu))?;
            Ok::<_, Error>((a.to_vec::<f32>()?, b.to_vec::<f32>()?, c.to_vec::<f32>()?))
        });
        tx.send(out).unwrap();
    });
    let (a, b, c) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Tensor::rand inside with_default_generator deadlocked")
        .unwrap();
    assert!(a.iter().chain(&b).all(|v| (0.0..1.0).contains(v)));
    assert_ne!(a, b);
    assert_ne!(b, c);
}

#[test]
fn crossed_copies_on_two_threads_finish() {
    // `a.copy_(&b)` on one thread while another runs `b.copy_(&a)` used to deadlock (each held
    // its destination's write lock and waited for the other's read lock).
    let a = Tensor::from_vec(vec![1.0f32; 64], [8, 8]).unwrap();
    let b = Tensor::from_vec(vec![2.0f32; 64], [8, 8]).unwrap();
    let (tx, rx) = mpsc::channel();
    let spawn = |dst: Tensor, src: Tensor, tx: mpsc::Sender<()>| {
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                dst.copy_(&src).unwrap();
            }
            tx.send(()).unwrap();
        })
    };
    spawn(a.clone(), b.clone(), tx.clone());
    spawn(b.clone(), a.clone(), tx);
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("crossed copy_ calls deadlocked");
    }
    // Both end up holding one of the two original values everywhere.
    let (va, vb) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    assert!(va.iter().chain(&vb).all(|&v| v == 1.0 || v == 2.0));
    assert_eq!(a.version(), 20_000);
}
