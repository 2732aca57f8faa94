//! Every loss against PyTorch (values from `tests/reference/losses_ref.py`) for every
//! reduction: the loss and the gradient of its sum with respect to the input(s).

use crate::common;

use common::{assert_no_failures, get, mismatch, reference};
use sinew_nn::StateDict;
use sinew_nn::loss::*;
use sinew_tensor::{Result, Tensor};

/// The loss of reference case `case` with `reduction`, on `input` (and `input2`).
fn loss_of(
    refs: &StateDict,
    case: &str,
    input: &Tensor,
    input2: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    let target = get(refs, &format!("{case}.target"));
    let weight = refs.get(&format!("{case}.weight")).cloned();
    let r = reduction;
    let ce = CrossEntropyLoss {
        weight: weight.clone(),
        reduction: r,
        ..Default::default()
    };
    match case {
        // The loss modules (each forwards to its function).
        "mse" => MseLoss { reduction: r }.forward(input, &target),
        "l1" => L1Loss { reduction: r }.forward(input, &target),
        "smooth_l1" => SmoothL1Loss {
            beta: 0.5,
            reduction: r,
        }
        .forward(input, &target),
        "huber" => HuberLoss {
            delta: 2.0,
            reduction: r,
        }
        .forward(input, &target),
        "ce_index" | "ce_weighted_ignore" | "ce_probs" | "ce_nchw" | "ce_extreme" => {
            ce.forward(input, &target)
        }
        "ce_ignore_custom" => CrossEntropyLoss {
            ignore_index: 2,
            ..ce
        }
        .forward(input, &target),
        "ce_smoothing" | "ce_probs_smoothing" => ce.label_smoothing(0.1).forward(input, &target),
        "ce_smoothing_weighted" => ce.label_smoothing(0.2).forward(input, &target),
        "nll" | "nll_weighted" => NllLoss {
            weight,
            reduction: r,
            ..Default::default()
        }
        .forward(input, &target),
        "bce" => BceLoss {
            weight,
            reduction: r,
        }
        .forward(input, &target),
        "bce_logits" | "bce_logits_extreme" => BceWithLogitsLoss {
            reduction: r,
            ..Default::default()
        }
        .forward(input, &target),
        "bce_logits_pos_weight" => BceWithLogitsLoss {
            pos_weight: Some(get(refs, &format!("{case}.pos_weight"))),
            reduction: r,
            ..Default::default()
        }
        .forward(input, &target),
        "kl_div" => kl_div(input, &target, r, false),
        "kl_div_log_target" => kl_div(input, &target, r, true),
        "cosine_embedding" => cosine_embedding_loss(input, input2, &target, 0.2, r),
        "hinge_embedding" => hinge_embedding_loss(input, &target, 1.0, r),
        "multi_margin" => MultiMarginLoss {
            reduction: r,
            ..Default::default()
        }
        .forward(input, &target),
        "multi_margin_p2" => MultiMarginLoss {
            p: 2,
            margin: 0.5,
            weight,
            reduction: r,
        }
        .forward(input, &target),
        "margin_ranking" => margin_ranking_loss(input, input2, &target, 0.5, r),
        "soft_margin" => soft_margin_loss(input, &target, r),
        "multilabel_soft_margin" | "multilabel_soft_margin_weighted" => {
            multilabel_soft_margin_loss(input, &target, weight.as_ref(), r)
        }
        // The negative is the case's target.
        "triplet_margin" => triplet_margin_loss(input, input2, &target, 1.0, 2.0, r),
        "triplet_margin_swap" => TripletMarginLoss {
            margin: 0.5,
            p: 1.0,
            swap: true,
            reduction: r,
            ..Default::default()
        }
        .forward(input, input2, &target),
        "poisson_nll" => poisson_nll_loss(input, &target, true, false, 1e-8, r),
        "poisson_nll_full" => poisson_nll_loss(input, &target, false, true, 1e-8, r),
        // The variance is the case's second input.
        "gaussian_nll" | "gaussian_nll_shared" => {
            gaussian_nll_loss(input, &target, input2, false, 1e-6, r)
        }
        "gaussian_nll_full" => gaussian_nll_loss(input, &target, input2, true, 1e-3, r),
        other => panic!("no Sinew loss for reference case {other}"),
    }
}

fn reduction_named(name: &str) -> Reduction {
    match name {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        "batchmean" => Reduction::BatchMean,
        other => panic!("unknown reduction {other}"),
    }
}

#[test]
fn every_loss_matches_pytorch_for_every_reduction() {
    let refs = reference("losses.safetensors");
    let mut runs: Vec<(String, String)> = refs
        .keys()
        .filter_map(|k| k.strip_suffix(".loss"))
        .filter_map(|k| k.rsplit_once('.'))
        .map(|(case, r)| (case.to_string(), r.to_string()))
        .collect();
    runs.sort();
    assert!(
        runs.len() >= 36 * 3,
        "expected every case and reduction, found {}",
        runs.len()
    );
    let mut failures = Vec::new();
    for (case, r) in &runs {
        let input = get(&refs, &format!("{case}.input")).requires_grad_();
        let input2 = refs
            .get(&format!("{case}.input2"))
            .cloned()
            .unwrap_or_else(|| input.detach())
            .requires_grad_();
        let run = || -> Result<Vec<String>> {
            let loss = loss_of(&refs, case, &input, &input2, reduction_named(r))?;
            let mut out = Vec::new();
            let key = format!("{case}.{r}");
            out.extend(mismatch(
                &format!("{key}.loss"),
                &loss,
                &get(&refs, &format!("{key}.loss")),
                1e-5,
                1e-4,
            ));
            loss.sum_all()?.backward()?;
            let grad = input.grad().unwrap_or(input.zeros_like()?);
            out.extend(mismatch(
                &format!("{key}.grad"),
                &grad,
                &get(&refs, &format!("{key}.grad")),
                1e-5,
                1e-4,
            ));
            if let Some(want) = refs.get(&format!("{key}.grad2")) {
                out.extend(mismatch(
                    &format!("{key}.grad2"),
                    &input2.grad().unwrap_or(input2.zeros_like()?),
                    want,
                    1e-5,
                    1e-4,
                ));
            }
            Ok(out)
        };
        match run() {
            Ok(f) => failures.extend(f),
            Err(e) => failures.push(format!("{case}.{r}: error {e}")),
        }
    }
    assert_no_failures(&failures);
}

/// `normalize` (`F::normalize`) against PyTorch's `F.normalize`: the L2 default with a zero row (its norm
/// clamped at eps, so its gradient is the probe over eps), the L1 norm along dim 0 through an
/// entry that is 0, and p 3 with a large eps; gradients of `(y * w).sum()`.
#[test]
fn normalize_matches_pytorch() -> Result<()> {
    let refs = reference("losses.safetensors");
    let (x, w) = (get(&refs, "normalize.x"), get(&refs, "normalize.w"));
    let mut failures = Vec::new();
    for (name, p, dim, eps) in [
        ("normalize", 2.0, 1, 1e-12),
        ("normalize_p1_dim0", 1.0, 0, 1e-12),
        ("normalize_p3_eps", 3.0, -1, 0.5),
    ] {
        let x = x.detach().requires_grad_();
        let y = normalize(&x, p, dim, eps)?;
        y.mul(&w)?.sum_all()?.backward()?;
        let want = get(&refs, &format!("{name}.y"));
        failures.extend(mismatch(&format!("{name}.y"), &y, &want, 1e-6, 1e-5));
        let (grad, want) = (x.grad().unwrap(), get(&refs, &format!("{name}.grad")));
        failures.extend(mismatch(&format!("{name}.grad"), &grad, &want, 1e-6, 1e-5));
    }
    assert_no_failures(&failures);
    Ok(())
}

#[test]
fn cosine_similarity_matches_pytorch() -> Result<()> {
    let refs = reference("losses.safetensors");
    let x1 = get(&refs, "cosine_similarity.x1").requires_grad_();
    let x2 = get(&refs, "cosine_similarity.x2").requires_grad_();
    // The module's defaults (dim 1, eps 1e-8) are the reference's.
    let y = CosineSimilarity::default().forward(&x1, &x2)?;
    y.sum_all()?.backward()?;
    let mut failures = Vec::new();
    failures.extend(mismatch(
        "y",
        &y,
        &get(&refs, "cosine_similarity.y"),
        1e-6,
        1e-5,
    ));
    failures.extend(mismatch(
        "grad1",
        &x1.grad().unwrap(),
        &get(&refs, "cosine_similarity.grad1"),
        1e-6,
        1e-5,
    ));
    failures.extend(mismatch(
        "grad2",
        &x2.grad().unwrap(),
        &get(&refs, "cosine_similarity.grad2"),
        1e-6,
        1e-5,
    ));
    assert_no_failures(&failures);
    Ok(())
}

#[test]
fn extreme_logits_give_finite_losses_and_gradients() -> Result<()> {
    let logits =
        Tensor::from_vec(vec![1e4f32, -1e4, 0.0, -1e4, 1e4, 3.0], [2, 3])?.requires_grad_();
    let target = Tensor::from_vec(vec![1i64, 0], [2])?;
    let loss = cross_entropy(&logits, &target)?;
    loss.backward()?;
    // Each row picks a class 2e4 below the best one.
    assert!(
        (loss.to_scalar::<f32>()? - 2e4).abs() < 1.0,
        "loss {}",
        loss.to_scalar::<f32>()?
    );
    assert!(
        logits
            .grad()
            .unwrap()
            .to_vec::<f32>()?
            .iter()
            .all(|g| g.is_finite())
    );
    Ok(())
}

#[test]
fn bce_outside_the_unit_interval_is_an_error_as_in_pytorch() -> Result<()> {
    let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), [v.len()]);
    let message = |input: &[f32], target: &[f32]| -> Result<String> {
        Ok(binary_cross_entropy(&t(input)?, &t(target)?)
            .map(|_| String::from("no error"))
            .unwrap_or_else(|e| e.to_string()))
    };
    // torch: F.binary_cross_entropy(torch.tensor([0.5, 1.2]), torch.tensor([1., 0.]))
    // RuntimeError: all elements of input should be between 0 and 1 (NaN too)
    assert!(message(&[0.5, 1.2], &[1.0, 0.0])?.contains("all elements of input should be"));
    assert!(message(&[-0.1, 0.2], &[1.0, 0.0])?.contains("all elements of input should be"));
    assert!(message(&[0.5, f32::NAN], &[1.0, 0.0])?.contains("all elements of input should be"));
    assert!(message(&[0.5, 0.2], &[1.0, 1.5])?.contains("all elements of target should be"));
    // The ends of the interval are allowed: each log is clamped at -100, as in PyTorch
    // (F.binary_cross_entropy(torch.tensor([0., 1.]), torch.tensor([1., 0.])) == 100).
    let at_ends = binary_cross_entropy(&t(&[0.0, 1.0])?, &t(&[1.0, 0.0])?)?;
    assert_eq!(at_ends.item()?, 100.0);
    Ok(())
}

#[test]
fn margin_losses_pick_their_branch_at_infinities_as_pytorch() -> Result<()> {
    let inf = f32::INFINITY;
    let t = |v: &[f32], shape: &[usize]| Tensor::from_vec(v.to_vec(), shape);
    let values = |x: &Tensor| x.to_vec::<f32>();
    // x = torch.tensor([inf, -inf, inf, -inf, 2., .5], requires_grad=True)
    // l = F.hinge_embedding_loss(x, torch.tensor([1., 1, -1, -1, -1, 1]), reduction='none')
    // l.sum().backward() -> l [inf, -inf, 0, inf, 0, .5], x.grad [1, 1, 0, -1, 0, 1]
    let x = t(&[inf, -inf, inf, -inf, 2.0, 0.5], &[6])?.requires_grad_();
    let y = t(&[1.0, 1.0, -1.0, -1.0, -1.0, 1.0], &[6])?;
    let l = hinge_embedding_loss(&x, &y, 1.0, Reduction::None)?;
    l.sum_all()?.backward()?;
    assert_eq!(values(&l)?, [inf, -inf, 0.0, inf, 0.0, 0.5]);
    assert_eq!(values(&x.grad().unwrap())?, [1.0, 1.0, 0.0, -1.0, 0.0, 1.0]);

    // F.multi_margin_loss(torch.tensor([[inf, 0, 0], [0, -inf, 1], [1, 2, 3]]),
    //     torch.tensor([0, 1, 2]), reduction='none') -> [0, inf, 0]
    let classes = Tensor::from_vec(vec![0i64, 1, 2], [3])?;
    let plain = MultiMarginLoss {
        reduction: Reduction::None,
        ..Default::default()
    };
    let x = t(&[inf, 0.0, 0.0, 0.0, -inf, 1.0, 1.0, 2.0, 3.0], &[3, 3])?;
    assert_eq!(values(&plain.forward(&x, &classes)?)?, [0.0, inf, 0.0]);
    // With p=2 and weight=torch.tensor([1., 2, 3]) on [[inf, 0, 0], [.5, -1, 1], [1, 2, 3]]:
    // l [0, 10.1667, 0], x.grad [[0, 0, 0], [3.3333, -7.3333, 4], [0, 0, 0]]
    let squared = MultiMarginLoss {
        p: 2,
        weight: Some(t(&[1.0, 2.0, 3.0], &[3])?),
        reduction: Reduction::None,
        ..Default::default()
    };
    let x = t(&[inf, 0.0, 0.0, 0.5, -1.0, 1.0, 1.0, 2.0, 3.0], &[3, 3])?.requires_grad_();
    let l = squared.forward(&x, &classes)?;
    l.sum_all()?.backward()?;
    let (l, g) = (values(&l)?, values(&x.grad().unwrap())?);
    let want_g = [0.0, 0.0, 0.0, 10.0 / 3.0, -22.0 / 3.0, 4.0, 0.0, 0.0, 0.0];
    assert!(
        l[0] == 0.0 && (l[1] - 61.0 / 6.0).abs() < 1e-5 && l[2] == 0.0,
        "{l:?}"
    );
    assert!(
        g.iter().zip(want_g).all(|(g, w)| (g - w).abs() < 1e-5),
        "{g:?}"
    );

    // F.cosine_embedding_loss(torch.tensor([[1., 2], [0, 0], [3, -1]]),
    //     torch.tensor([[2., 1], [1, 1], [1, 1]]), torch.tensor([1., -1, 0]), margin=-.5,
    //     reduction='none') -> [.2, .5, 0] (a target of 0 is neither branch)
    let l = cosine_embedding_loss(
        &t(&[1.0, 2.0, 0.0, 0.0, 3.0, -1.0], &[3, 2])?,
        &t(&[2.0, 1.0, 1.0, 1.0, 1.0, 1.0], &[3, 2])?,
        &t(&[1.0, -1.0, 0.0], &[3])?,
        -0.5,
        Reduction::None,
    )?;
    let l = values(&l)?;
    assert!(
        (l[0] - 0.2).abs() < 1e-6 && l[1] == 0.5 && l[2] == 0.0,
        "{l:?}"
    );
    // Also where the cosine is NaN: F.cosine_embedding_loss(torch.tensor([[inf, 1.]]),
    //     torch.tensor([[1., 1]]), torch.tensor([0.]), reduction='none') -> [0]
    let l = cosine_embedding_loss(
        &t(&[inf, 1.0], &[1, 2])?,
        &t(&[1.0, 1.0], &[1, 2])?,
        &t(&[0.0], &[1])?,
        0.0,
        Reduction::None,
    )?;
    assert_eq!(values(&l)?, [0.0]);
    Ok(())
}

#[test]
fn soft_margin_losses_stay_finite_where_pytorchs_overflows() -> Result<()> {
    // F.soft_margin_loss([100, -100], [-1, -1], reduction="none") = [inf, 3.9e-44] with
    // gradient [nan, 3.8e-44]: PyTorch's log1p(exp(100)) overflows in f32. Sinew's softplus
    // gives the limit, 100, with gradient 1 (a documented difference).
    let x = Tensor::from_vec(vec![100.0f32, -100.0], [2])?.requires_grad_();
    let y = Tensor::from_vec(vec![-1.0f32, -1.0], [2])?;
    let loss = soft_margin_loss(&x, &y, Reduction::None)?;
    let values = loss.to_vec::<f32>()?;
    assert_eq!(values[0], 100.0);
    assert!((0.0..1e-40).contains(&values[1]), "{values:?}");
    loss.sum_all()?.backward()?;
    let grad = x.grad().unwrap().to_vec::<f32>()?;
    assert_eq!(grad[0], 1.0);
    assert!((0.0..1e-40).contains(&grad[1]), "{grad:?}");
    // F.multilabel_soft_margin_loss([[100, -100]], [[0, 1]], reduction="none") = [100], grad
    // [[0.5, -0.5]]: equal to PyTorch's.
    let x = Tensor::from_vec(vec![100.0f32, -100.0], [1, 2])?.requires_grad_();
    let t = Tensor::from_vec(vec![0.0f32, 1.0], [1, 2])?;
    let loss = multilabel_soft_margin_loss(&x, &t, None, Reduction::None)?;
    assert_eq!(loss.to_vec::<f32>()?, vec![100.0]);
    loss.sum_all()?.backward()?;
    assert_eq!(x.grad().unwrap().to_vec::<f32>()?, vec![0.5, -0.5]);
    Ok(())
}

#[test]
fn ranking_and_likelihood_losses_reject_bad_inputs() -> Result<()> {
    let cpu = sinew_tensor::Device::cpu();
    let f32 = sinew_tensor::DType::F32;
    let x = Tensor::zeros([3, 4], f32, &cpu)?;
    let ones = Tensor::ones([3, 4], f32, &cpu)?;
    let other = Tensor::zeros([4, 3], f32, &cpu)?;
    let r = Reduction::Mean;
    assert!(margin_ranking_loss(&x, &other, &ones, 0.0, r).is_err());
    assert!(margin_ranking_loss(&x, &x, &other, 0.0, r).is_err());
    assert!(soft_margin_loss(&x, &other, r).is_err());
    assert!(multilabel_soft_margin_loss(&x, &other, None, r).is_err());
    let scalar = Tensor::zeros((), f32, &cpu)?;
    assert!(multilabel_soft_margin_loss(&scalar, &scalar, None, r).is_err());
    assert!(pairwise_distance(&scalar, &scalar, 2.0, 1e-6).is_err());
    // nn.PairwiseDistance(keepdim=True)(tensor([[3., 4.]]), zeros(1, 2)): [[5.0000]] (eps
    // 1e-6 added to the differences).
    let a = Tensor::from_vec(vec![3.0f32, 4.0], [1, 2])?;
    let d = PairwiseDistance {
        keepdim: true,
        ..Default::default()
    }
    .forward(&a, &Tensor::zeros([1, 2], f32, &cpu)?)?;
    assert_eq!(d.dims(), [1, 1]);
    assert!((d.to_vec::<f32>()?[0] - 5.0).abs() < 1e-5);
    assert!(triplet_margin_loss(&x, &x, &other, 1.0, 2.0, r).is_err());
    assert!(triplet_margin_loss(&x, &x, &x, 1.0, 0.0, r).is_err());
    assert!(poisson_nll_loss(&x, &other, true, false, 1e-8, r).is_err());
    // F.gaussian_nll_loss(zeros(3, 4), zeros(3, 4), ones(4)): "var is of incorrect size";
    // with -ones(3, 4): "var has negative entry/entries"; with ones(3) (one per sample): 0.5
    // against a target of ones.
    let var4 = Tensor::ones([4], f32, &cpu)?;
    assert!(gaussian_nll_loss(&x, &x, &var4, false, 1e-6, r).is_err());
    assert!(gaussian_nll_loss(&x, &x, &ones.neg()?, false, 1e-6, r).is_err());
    let var3 = Tensor::ones([3], f32, &cpu)?;
    let loss = gaussian_nll_loss(&x, &ones, &var3, false, 1e-6, r)?;
    assert_eq!(loss.to_vec::<f32>()?, vec![0.5]);
    Ok(())
}
