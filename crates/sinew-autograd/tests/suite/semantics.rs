//! Autograd behaviour: accumulation, retain_graph, create_graph, no_grad, detach and errors,
//! with expected values worked out by hand or with the PyTorch snippet quoted.

use sinew_tensor::{BackwardOptions, no_grad};
use sinew_tensor::{DType, Device, Tensor};

fn t(v: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

fn grad_of(v: &Tensor) -> Vec<f32> {
    v.grad().expect("a gradient").to_vec::<f32>().unwrap()
}

#[test]
fn matmul_relu_sum_matches_pytorch() {
    // x = torch.tensor([[1., -2.], [3., .5]], requires_grad=True)
    // w = torch.tensor([[.5, -1.], [2., 1.]], requires_grad=True)
    // (x @ w).relu().sum().backward()
    // x.grad = [[0, 0], [.5, 2]]; w.grad = [[3, 0], [.5, 0]]
    let x = t(&[1.0, -2.0, 3.0, 0.5], &[2, 2]).requires_grad_();
    let w = t(&[0.5, -1.0, 2.0, 1.0], &[2, 2]).requires_grad_();
    x.matmul(&w)
        .unwrap()
        .relu()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad_of(&x), vec![0.0, 0.0, 0.5, 2.0]);
    assert_eq!(grad_of(&w), vec![3.0, 0.0, 0.5, 0.0]);
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_one_hot() {
    // logits = torch.tensor([[2., 1., .1]], requires_grad=True)
    // F.cross_entropy(logits, torch.tensor([0])).backward()
    // loss = 0.41703; logits.grad = softmax - one_hot = [[-0.34100, 0.24243, 0.09857]]
    let logits = t(&[2.0, 1.0, 0.1], &[1, 3]).requires_grad_();
    let target = Tensor::from_vec(vec![0i64], [1, 1]).unwrap();
    let loss = logits
        .log_softmax(-1)
        .unwrap()
        .gather(1, &target)
        .unwrap()
        .neg()
        .unwrap()
        .mean_all()
        .unwrap();
    assert!((loss.item().unwrap() - 0.417_030_0).abs() < 1e-6);
    loss.backward().unwrap();
    for (g, e) in grad_of(&logits)
        .iter()
        .zip([-0.340_998_9_f32, 0.242_433, 0.098_565_9])
    {
        assert!((g - e).abs() < 1e-6, "{g} vs {e}");
    }
}

#[test]
fn gradients_accumulate_across_backward_calls() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    for _ in 0..3 {
        x.mul_scalar(2.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    }
    assert_eq!(grad_of(&x), vec![6.0, 6.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn a_second_backward_through_a_freed_graph_is_an_error() {
    let x = t(&[1.0], &[1]).requires_grad_();
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let err = y.backward().unwrap_err().to_string();
    assert!(
        err.contains("already freed") && err.contains("retain_graph"),
        "{err}"
    );
}

#[test]
fn retain_graph_allows_a_second_backward() {
    let x = t(&[0.0], &[1]).requires_grad_();
    let y = x.exp().unwrap().sum_all().unwrap();
    let keep = BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    y.backward_with(None, keep).unwrap();
    y.backward().unwrap();
    assert_eq!(grad_of(&x), vec![2.0]);
}

#[test]
fn create_graph_gives_second_derivatives() {
    // y = x³ → dy/dx = 3x², d²y/dx² = 6x; at x = 2: 12 and 12.
    let x = Tensor::from_vec(vec![2.0f64], [1])
        .unwrap()
        .requires_grad_();
    let y = x.powf(3.0).unwrap().sum_all().unwrap();
    y.backward_with(
        None,
        BackwardOptions {
            create_graph: true,
            ..Default::default()
        },
    )
    .unwrap();
    let dy = x.grad().unwrap();
    assert_eq!(dy.to_vec::<f64>().unwrap(), vec![12.0]);
    assert!(dy.requires_grad());
    x.zero_grad();
    dy.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![12.0]);
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    {
        let _guard = no_grad();
        let y = x.exp().unwrap();
        assert!(!y.requires_grad() && y.is_leaf());
    }
    let y = x.exp().unwrap();
    assert!(y.requires_grad() && !y.is_leaf());
    assert_eq!(y.op_name(), Some("exp"));
    let d = y.detach();
    assert!(!d.requires_grad());
    assert!(d.same_storage(&y));
    // Only the branch through x gets a gradient: d is a constant.
    x.mul(&d).unwrap().sum_all().unwrap().backward().unwrap();
    let e = [1f32.exp(), 2f32.exp()];
    assert_eq!(grad_of(&x), e.to_vec());
}

#[test]
fn constants_record_nothing() {
    let a = t(&[1.0], &[1]);
    let b = a.exp().unwrap().mul(&a).unwrap();
    assert!(!b.requires_grad() && b.is_leaf());
    assert!(
        b.backward()
            .unwrap_err()
            .to_string()
            .contains("does not require grad")
    );
}

#[test]
fn broadcast_inputs_get_gradients_of_their_own_shape() {
    let x = Tensor::ones([2, 3], DType::F32, &Device::cpu())
        .unwrap()
        .requires_grad_();
    let b = t(&[1.0, 2.0, 3.0], &[3]).requires_grad_();
    let s = Tensor::scalar(2.0f32).requires_grad_();
    x.add(&b)
        .unwrap()
        .mul(&s)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad_of(&b), vec![4.0, 4.0, 4.0]);
    assert_eq!(b.grad().unwrap().dims(), &[3]);
    // d/ds Σ (x + b) s = Σ (x + b) = 6 + 2 * 6 = 18
    assert_eq!(grad_of(&s), vec![18.0]);
}

#[test]
fn non_scalar_backward_needs_an_explicit_gradient() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.mul_scalar(3.0).unwrap();
    assert!(y.backward().unwrap_err().to_string().contains("scalar"));
    let wrong = t(&[1.0, 1.0, 1.0], &[3]);
    assert!(
        y.backward_with(Some(wrong), BackwardOptions::default())
            .is_err()
    );
    y.backward_with(Some(t(&[1.0, -1.0], &[2])), BackwardOptions::default())
        .unwrap();
    assert_eq!(grad_of(&x), vec![3.0, -3.0]);
}

#[test]
fn requires_grad_can_only_change_on_leaves() {
    let plain = t(&[1.0], &[1]);
    // A plain tensor has no autograd state to switch on in place: requires_grad_() returns it.
    let err = plain.set_requires_grad(true).unwrap_err().to_string();
    assert!(err.contains("requires_grad_()"), "{err}");
    let x = plain.requires_grad_();
    x.set_requires_grad(false).unwrap();
    assert!(!x.clone().requires_grad());
    x.set_requires_grad(true).unwrap();
    let y = x.exp().unwrap();
    assert!(y.requires_grad());
    assert!(y.set_requires_grad(false).is_err());
}

#[test]
fn max_with_indices_routes_the_gradient_to_the_argmax_only() {
    // torch.max(x, 1) backward: gradient only at the (first) max index.
    let x = t(&[1.0, 3.0, 3.0, 0.0, -1.0, 2.0], &[2, 3]).requires_grad_();
    let (values, idx) = x.max_dim(1, false).unwrap();
    assert_eq!(idx.to_vec::<i64>().unwrap(), vec![1, 2]);
    values.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    // amax shares the gradient between ties, as PyTorch's amax does.
    let y = t(&[1.0, 3.0, 3.0], &[3]).requires_grad_();
    y.max(&[0], false).unwrap().backward().unwrap();
    assert_eq!(grad_of(&y), vec![0.0, 0.5, 0.5]);
}

#[test]
fn a_shared_input_sums_its_gradients() {
    // y = x * x + x → dy/dx = 2x + 1
    let x = t(&[3.0], &[1]).requires_grad_();
    x.mul(&x)
        .unwrap()
        .add(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad_of(&x), vec![7.0]);
}

#[test]
fn vars_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tensor>();
    // And a graph built on one thread can be differentiated on another.
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.square().unwrap().sum_all().unwrap();
    std::thread::spawn(move || y.backward().unwrap())
        .join()
        .unwrap();
    assert_eq!(grad_of(&x), vec![2.0, 4.0]);
}

#[test]
fn a_deep_graph_does_not_overflow_the_stack() {
    let x = t(&[1.0], &[1]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..20_000 {
        y = y.add_scalar(0.0).unwrap();
    }
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![1.0]);
}
