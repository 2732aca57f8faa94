"""losses.safetensors: loss values and input gradients for every reduction.

Keys per case C: C.input, C.target, extras (C.weight, C.pos_weight, C.input2),
and for each reduction R: C.R.loss, C.R.grad (d loss.sum() / d input),
plus C.R.grad2 (w.r.t. input2) for cosine_embedding.
"""
import torch
import torch.nn.functional as F

from common import write

REDUCTIONS = ("mean", "sum", "none")


def loss_case(out, meta, name, fn, inp, target, extras=None, kwargs=None,
              reductions=REDUCTIONS, input2=None):
    """fn(input, target, reduction=R, **extras, **kwargs) for every R."""
    extras, kwargs = extras or {}, kwargs or {}
    meta[name] = {"fn": fn.__name__, "kwargs": kwargs, "extras": sorted(extras)}
    out[f"{name}.input"] = inp
    out[f"{name}.target"] = target
    for k, v in extras.items():
        out[f"{name}.{k}"] = v
    if input2 is not None:
        out[f"{name}.input2"] = input2
    for r in reductions:
        a = inp.clone().requires_grad_(True)
        if input2 is not None:
            b = input2.clone().requires_grad_(True)
            loss = fn(a, b, target, reduction=r, **extras, **kwargs)
        else:
            loss = fn(a, target, reduction=r, **extras, **kwargs)
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(a.grad).all(), name
        out[f"{name}.{r}.loss"] = loss
        out[f"{name}.{r}.grad"] = a.grad
        if input2 is not None:
            out[f"{name}.{r}.grad2"] = b.grad


def regression_cases(out, meta):
    torch.manual_seed(0)
    x = torch.randn(3, 4) * 2
    y = torch.randn(3, 4) * 2
    loss_case(out, meta, "mse", F.mse_loss, x, y)
    loss_case(out, meta, "l1", F.l1_loss, x, y)
    # smooth_l1 (beta 0.5): diffs span both sides of 0.5.
    d = torch.tensor([[0.1, -0.3, 0.45, -0.05], [0.8, -1.2, 2.0, -0.6], [0.2, 1.5, -0.4, -3.0]])
    loss_case(out, meta, "smooth_l1", F.smooth_l1_loss, x, x + d, kwargs={"beta": 0.5})
    # huber (delta 2.0): diffs span both sides of 2.
    d = torch.tensor([[0.5, -1.0, 2.5, -3.0], [1.9, -2.2, 4.0, -0.1], [0.3, 5.0, -1.5, 0.0]])
    loss_case(out, meta, "huber", F.huber_loss, x, x - d, kwargs={"delta": 2.0})


def cross_entropy_cases(out, meta):
    ce = F.cross_entropy
    torch.manual_seed(0)
    loss_case(out, meta, "ce_index", ce, torch.randn(5, 4) * 2, torch.tensor([0, 3, 1, 3, 2]))

    w = torch.rand(4) + 0.25
    loss_case(out, meta, "ce_weighted_ignore", ce, torch.randn(6, 4) * 2,
              torch.tensor([1, -100, 3, 0, 2, 3]), extras={"weight": w})
    loss_case(out, meta, "ce_ignore_custom", ce, torch.randn(5, 4) * 2,
              torch.tensor([2, 0, 2, 3, 1]), kwargs={"ignore_index": 2})
    loss_case(out, meta, "ce_smoothing", ce, torch.randn(5, 4) * 2,
              torch.tensor([3, 1, 0, 2, 1]), kwargs={"label_smoothing": 0.1})
    w = torch.rand(4) + 0.25
    loss_case(out, meta, "ce_smoothing_weighted", ce, torch.randn(5, 4) * 2,
              torch.tensor([0, 2, 2, 1, 3]), extras={"weight": w},
              kwargs={"label_smoothing": 0.2})

    probs = torch.softmax(torch.randn(5, 4), dim=1)
    loss_case(out, meta, "ce_probs", ce, torch.randn(5, 4) * 2, probs)
    probs = torch.softmax(torch.randn(5, 4), dim=1)
    loss_case(out, meta, "ce_probs_smoothing", ce, torch.randn(5, 4) * 2, probs,
              kwargs={"label_smoothing": 0.1})

    loss_case(out, meta, "ce_nchw", ce, torch.randn(2, 3, 4, 5) * 2,
              torch.randint(0, 3, (2, 4, 5)))
    ext = torch.tensor([[1e4, -1e4, -1e4, 1e4], [-1e4, -1e4, 1e4, -1e4], [1e4, -1e4, -1e4, -1e4]])
    loss_case(out, meta, "ce_extreme", ce, ext, torch.tensor([0, 1, 0]))


def nll_cases(out, meta):
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(5, 4) * 2, dim=1)
    loss_case(out, meta, "nll", F.nll_loss, logp, torch.tensor([1, 0, 3, 3, 2]))
    logp = torch.log_softmax(torch.randn(5, 4) * 2, dim=1)
    loss_case(out, meta, "nll_weighted", F.nll_loss, logp, torch.tensor([2, -100, 0, 3, 2]),
              extras={"weight": torch.rand(4) + 0.25})


def bce_cases(out, meta):
    torch.manual_seed(0)
    p = torch.sigmoid(torch.randn(3, 4) * 2)
    loss_case(out, meta, "bce", F.binary_cross_entropy, p, torch.rand(3, 4))
    bcel = F.binary_cross_entropy_with_logits
    loss_case(out, meta, "bce_logits", bcel, torch.randn(3, 4) * 2, torch.rand(3, 4))
    loss_case(out, meta, "bce_logits_pos_weight", bcel, torch.randn(3, 4) * 2, torch.rand(3, 4),
              extras={"pos_weight": torch.rand(4) * 2 + 0.5})
    ext = torch.tensor([[1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, 1e4, -1e4], [1e4, 1e4, -1e4, -1e4]])
    tgt = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    loss_case(out, meta, "bce_logits_extreme", bcel, ext, tgt)


def kl_cases(out, meta):
    torch.manual_seed(0)
    reds = REDUCTIONS + ("batchmean",)
    logp = torch.log_softmax(torch.randn(3, 5) * 2, dim=1)
    q = torch.softmax(torch.randn(3, 5) * 2, dim=1)
    loss_case(out, meta, "kl_div", F.kl_div, logp, q, kwargs={"log_target": False},
              reductions=reds)
    logp = torch.log_softmax(torch.randn(3, 5) * 2, dim=1)
    logq = torch.log_softmax(torch.randn(3, 5) * 2, dim=1)
    loss_case(out, meta, "kl_div_log_target", F.kl_div, logp, logq, kwargs={"log_target": True},
              reductions=reds)


def margin_cases(out, meta):
    torch.manual_seed(0)
    x1 = torch.randn(4, 6)
    x2 = torch.randn(4, 6)
    x2[1] = x1[1] + 0.3 * torch.randn(6)   # target -1, cos well above margin: active
    x2[0] = x1[0] + 0.5 * torch.randn(6)   # target +1, similar pair
    tgt = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss_case(out, meta, "cosine_embedding", F.cosine_embedding_loss, x1, tgt,
              kwargs={"margin": 0.2}, input2=x2)

    x = torch.randn(3, 4) * 1.5
    tgt = torch.where(torch.rand(3, 4) < 0.5, -1.0, 1.0)
    loss_case(out, meta, "hinge_embedding", F.hinge_embedding_loss, x, tgt,
              kwargs={"margin": 1.0})

    loss_case(out, meta, "multi_margin", F.multi_margin_loss, torch.randn(4, 5),
              torch.tensor([0, 4, 2, 2]), kwargs={"p": 1, "margin": 1.0})
    loss_case(out, meta, "multi_margin_p2", F.multi_margin_loss, torch.randn(4, 5),
              torch.tensor([3, 1, 1, 0]), extras={"weight": torch.rand(5) + 0.25},
              kwargs={"p": 2, "margin": 0.5})


def ranking_cases(out, meta):
    """Margin ranking, soft margin, multilabel soft margin and triplet losses. The triplet
    cases pass the negative as `target` (its gradient is not recorded)."""
    torch.manual_seed(5)
    x1, x2 = torch.randn(6), torch.randn(6)
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])

    def margin_ranking(a, b, t, reduction):
        return F.margin_ranking_loss(a, b, t, margin=0.5, reduction=reduction)
    loss_case(out, meta, "margin_ranking", margin_ranking, x1, y, input2=x2)

    x = torch.randn(3, 4) * 2
    loss_case(out, meta, "soft_margin", F.soft_margin_loss, x,
              torch.where(torch.rand(3, 4) < 0.5, -1.0, 1.0))
    x = torch.randn(3, 5) * 2
    t = (torch.rand(3, 5) < 0.4).float()
    loss_case(out, meta, "multilabel_soft_margin", F.multilabel_soft_margin_loss, x, t)
    loss_case(out, meta, "multilabel_soft_margin_weighted", F.multilabel_soft_margin_loss, x, t,
              extras={"weight": torch.rand(5) + 0.25})

    a, pos, neg = torch.randn(5, 6), torch.randn(5, 6), torch.randn(5, 6)
    pos[0] = a[0] + 0.1 * torch.randn(6)   # a close positive: that row's hinge is 0
    neg[1] = a[1] + 0.1 * torch.randn(6)   # a close negative: active
    neg[2] = pos[2] + 0.05 * torch.randn(6)  # with swap, d(p, n) is the smaller distance

    def triplet(a, b, n, reduction):
        return F.triplet_margin_loss(a, b, n, margin=1.0, p=2, reduction=reduction)

    def triplet_swap(a, b, n, reduction):
        return F.triplet_margin_loss(a, b, n, margin=0.5, p=1, swap=True, reduction=reduction)
    loss_case(out, meta, "triplet_margin", triplet, a, neg, input2=pos)
    loss_case(out, meta, "triplet_margin_swap", triplet_swap, a, neg, input2=pos)


def likelihood_cases(out, meta):
    """Poisson and Gaussian negative log likelihoods; the Gaussian cases pass the variance as
    `input2` (its gradient is `grad2`), two entries below eps (clamped, gradient passed)."""
    torch.manual_seed(6)
    counts = torch.tensor([[0.0, 1.0, 2.0, 3.0], [5.0, 0.0, 1.0, 7.0], [2.0, 4.0, 0.0, 1.0]])
    loss_case(out, meta, "poisson_nll", F.poisson_nll_loss, torch.randn(3, 4), counts)

    def poisson_full(a, t, reduction):
        return F.poisson_nll_loss(a, t, log_input=False, full=True, reduction=reduction)
    loss_case(out, meta, "poisson_nll_full", poisson_full, torch.rand(3, 4) * 3 + 0.1, counts)

    mu, y = torch.randn(3, 4), torch.randn(3, 4)
    var = torch.rand(3, 4) + 0.1
    var[0, 0] = 1e-8
    var[2, 3] = 0.0

    def gaussian(a, v, t, reduction):
        return F.gaussian_nll_loss(a, t, v, reduction=reduction)

    def gaussian_full(a, v, t, reduction):
        return F.gaussian_nll_loss(a, t, v, full=True, eps=1e-3, reduction=reduction)
    loss_case(out, meta, "gaussian_nll", gaussian, mu, y, input2=var)
    loss_case(out, meta, "gaussian_nll_full", gaussian_full, mu, y, input2=var)
    # One variance per row: [3, 1], broadcast over the last dim.
    loss_case(out, meta, "gaussian_nll_shared", gaussian, mu, y, input2=torch.rand(3, 1) + 0.5)


def cosine_similarity_case(out, meta):
    torch.manual_seed(0)
    x1 = torch.randn(4, 6)
    x2 = torch.randn(4, 6)
    x2[0] = -2.0 * x1[0]   # exactly opposite direction
    a, b = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
    y = F.cosine_similarity(a, b, dim=1, eps=1e-8)
    y.sum().backward()
    meta["cosine_similarity"] = {"fn": "cosine_similarity", "kwargs": {"dim": 1, "eps": 1e-8}}
    out.update({"cosine_similarity.x1": x1, "cosine_similarity.x2": x2,
                "cosine_similarity.y": y, "cosine_similarity.grad1": a.grad,
                "cosine_similarity.grad2": b.grad})


def normalize_cases(out, meta):
    """F.normalize (default eps 1e-12) with a probe `w`: gradients of (y * w).sum()."""
    torch.manual_seed(2)
    x = torch.randn(3, 5)
    x[1] = 0.0   # a zero row: its L2 norm is clamped at eps
    x[2, 3] = 0.0  # a zero entry inside a nonzero vector (the L1 norm's kink)
    w = torch.randn(3, 5)
    for name, kwargs in (("normalize", {}), ("normalize_p1_dim0", {"p": 1.0, "dim": 0}),
                         ("normalize_p3_eps", {"p": 3.0, "dim": -1, "eps": 0.5})):
        a = x.clone().requires_grad_(True)
        y = F.normalize(a, **kwargs)
        (y * w).sum().backward()
        meta[name] = {"fn": "normalize", "kwargs": kwargs}
        out.update({f"{name}.y": y, f"{name}.grad": a.grad})
    out.update({"normalize.x": x, "normalize.w": w})


def make_losses():
    out, meta = {}, {}
    for group in (regression_cases, cross_entropy_cases, nll_cases, bce_cases, kl_cases,
                  margin_cases, ranking_cases, likelihood_cases, cosine_similarity_case,
                  normalize_cases):
        group(out, meta)
    return write("losses.safetensors", out, meta)
