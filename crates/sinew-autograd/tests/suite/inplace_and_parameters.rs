//! In-place writes against saved tensors (the version counter), parameters, gradient hooks,
//! `retain_grad`, deep graphs and backward's argument checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sinew_tensor::{BackwardOptions, DType, Device, Parameter, Tensor, no_grad, with_no_grad};

fn t(v: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

#[test]
fn a_saved_tensor_modified_in_place_makes_backward_fail_naming_the_op() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.exp().unwrap(); // exp saves its output
    let loss = y.sum_all().unwrap();
    with_no_grad(|| y.copy_(&t(&[0.0, 0.0], &[2]))).unwrap();
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("`exp`"), "{err}");
    assert!(err.contains("modified by an in-place operation"), "{err}");
    assert!(
        err.contains("version 1") && err.contains("version 0"),
        "{err}"
    );
    println!("version-counter error: {err}");
}

#[test]
fn a_weight_changed_between_forward_and_backward_is_an_error_not_a_wrong_gradient() {
    let x = t(&[1.0, 2.0], &[1, 2]);
    let w = t(&[0.5, -1.0], &[2, 1]).requires_grad_();
    let h = x.matmul(&w).unwrap().requires_grad_();
    let loss = h.square().unwrap().sum_all().unwrap();
    // matmul saved w only when x needs a gradient; square saved h: change h in place.
    with_no_grad(|| h.copy_(&t(&[9.0], &[1, 1]))).unwrap();
    assert!(loss.backward().is_err());

    // The case the issue names: w saved by matmul (x tracked too), then updated in place.
    let x = t(&[1.0, 2.0], &[1, 2]).requires_grad_();
    let loss = x.matmul(&w).unwrap().sum_all().unwrap();
    with_no_grad(|| w.copy_(&t(&[0.0, 0.0], &[2, 1]))).unwrap();
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("`matmul`"), "{err}");
}

#[test]
fn unmodified_saved_tensors_still_work_after_unrelated_writes() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let other = t(&[5.0, 5.0], &[2]);
    let loss = x.square().unwrap().sum_all().unwrap();
    other.copy_(&t(&[1.0, 1.0], &[2])).unwrap();
    loss.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
}

#[test]
fn in_place_writes_to_tracked_tensors_need_no_grad() {
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let err = w.copy_(&t(&[0.0, 0.0], &[2])).unwrap_err().to_string();
    assert!(err.contains("no_grad"), "{err}");
    // A tracked source is refused too: the write would not be recorded.
    let plain = t(&[0.0, 0.0], &[2]);
    assert!(plain.copy_(&w).is_err());
    {
        let _guard = no_grad();
        w.copy_(&t(&[3.0, 4.0], &[2])).unwrap();
    }
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    assert_eq!(w.version(), 1);
}

#[test]
fn parameters_share_their_value_and_gradient_with_every_holder() {
    let p = Parameter::new(t(&[1.0, 2.0], &[2]));
    let holder = p.clone();
    p.value()
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        holder.grad().unwrap().to_vec::<f32>().unwrap(),
        vec![2.0, 4.0]
    );
    // Same shape: the value is replaced, the gradient kept.
    p.set_value(t(&[3.0, 4.0], &[2])).unwrap();
    assert_eq!(holder.value().to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    assert!(holder.grad().is_some());
    // Another shape (or device or dtype): the stale gradient goes.
    p.set_value(Tensor::zeros([3], DType::F64, &Device::cpu()).unwrap())
        .unwrap();
    assert!(holder.grad().is_none());
    assert_eq!(holder.value().dims(), &[3]);
    assert!(holder.requires_grad());
    holder.set_requires_grad(false).unwrap();
    assert!(!p.value().requires_grad());
}

#[test]
fn grad_hooks_run_after_accumulation_and_can_be_removed() {
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (s, c) = (seen.clone(), calls.clone());
    let handle = w
        .register_grad_hook(move |g| {
            s.lock().unwrap().push(g.to_vec::<f32>()?);
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    // Used twice in one graph: the hook runs once, with the summed gradient.
    let y = w.mul(&w).unwrap().add(&w).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().unwrap()[0], vec![3.0, 5.0]);
    // A second backward accumulates; the hook sees the accumulated gradient.
    w.sum_all().unwrap().backward().unwrap();
    assert_eq!(seen.lock().unwrap()[1], vec![4.0, 6.0]);
    assert!(w.remove_grad_hook(handle));
    w.sum_all().unwrap().backward().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Hooks belong on leaves.
    assert!(w.exp().unwrap().register_grad_hook(|_| Ok(())).is_err());
}

#[test]
fn retain_grad_keeps_a_non_leaf_gradient() {
    // x = torch.tensor([1., 2.], requires_grad=True); h = x * 3; h.retain_grad()
    // (h ** 2).sum().backward(); h.grad = [6, 12]
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let h = x.mul_scalar(3.0).unwrap();
    h.retain_grad().unwrap();
    let other = x.mul_scalar(2.0).unwrap(); // not retained
    h.square()
        .unwrap()
        .add(&other)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(h.grad().unwrap().to_vec::<f32>().unwrap(), vec![6.0, 12.0]);
    assert!(other.grad().is_none());
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![20.0, 38.0]);
}

/// A chain of `n` recorded ops.
fn chain(n: usize) -> (Tensor, Tensor) {
    let x = t(&[1.0], &[1]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..n {
        y = y.mul_scalar(1.0).unwrap();
    }
    (x, y)
}

#[test]
fn dropping_a_deep_graph_without_backward_does_not_overflow_the_stack() {
    let (_, y) = chain(200_000);
    drop(y);
    // On a worker thread with a small stack too.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let (_, y) = chain(50_000);
            drop(y);
        })
        .unwrap()
        .join()
        .unwrap();
    // And after a retain_graph backward.
    let (x, y) = chain(100_000);
    y.backward_with(
        None,
        BackwardOptions {
            retain_graph: true,
            create_graph: false,
        },
    )
    .unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![1.0]);
    drop(y);
}

#[test]
fn backward_seeds_must_match_the_output_dtype_and_device() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.mul_scalar(2.0).unwrap();
    let seed = Tensor::from_vec(vec![1i64, 1], [2]).unwrap();
    let err = y
        .backward_with(Some(seed), BackwardOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("I64") || err.contains("i64"), "{err}");
    assert!(x.grad().is_none());
}

#[test]
fn max_pool_backward_on_an_empty_batch_gives_an_empty_gradient() {
    let x = Tensor::zeros([0, 2, 4, 4], DType::F32, &Device::cpu())
        .unwrap()
        .requires_grad_();
    let (v, _) = x.max_pool2d(sinew_tensor::Pool2dConfig::new(2)).unwrap();
    assert_eq!(v.dims(), &[0, 2, 2, 2]);
    v.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().dims(), &[0, 2, 4, 4]);
}
