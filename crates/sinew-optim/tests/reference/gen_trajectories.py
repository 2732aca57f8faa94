"""Optimizer trajectories on a tiny 3-4-2 tanh MLP regression problem.

Writes trajectories.safetensors; see README.md for the key layout.
"""

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from common import metadata, out_path

STEPS = 50
SAVE_AFTER = (1, 2, 5, 10, 25, 50)
DTYPES = {"f64": torch.float64, "f32": torch.float32}
PARAM_NAMES = ("w1", "b1", "w2", "b2")

# name -> function(w1, b1, w2, b2) -> optimizer. Parameter order is always [w1, b1, w2, b2].
CONFIGS = {
    "sgd": lambda w1, b1, w2, b2: torch.optim.SGD(
        [w1, b1, w2, b2], lr=0.1, foreach=False),
    "sgd_momentum": lambda w1, b1, w2, b2: torch.optim.SGD(
        [w1, b1, w2, b2], lr=0.1, momentum=0.9, foreach=False),
    "sgd_dampening_wd": lambda w1, b1, w2, b2: torch.optim.SGD(
        [w1, b1, w2, b2], lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01,
        foreach=False),
    "sgd_nesterov": lambda w1, b1, w2, b2: torch.optim.SGD(
        [w1, b1, w2, b2], lr=0.1, momentum=0.9, nesterov=True, foreach=False),
    "sgd_maximize": lambda w1, b1, w2, b2: torch.optim.SGD(
        [w1, b1, w2, b2], lr=0.02, momentum=0.5, maximize=True, foreach=False),
    "sgd_groups": lambda w1, b1, w2, b2: torch.optim.SGD(
        [{"params": [w1, b1], "lr": 0.05, "weight_decay": 0.1},
         {"params": [w2, b2]}],
        lr=0.1, momentum=0.9, foreach=False),
    "adagrad": lambda w1, b1, w2, b2: torch.optim.Adagrad(
        [w1, b1, w2, b2], lr=0.1, foreach=False),
    "adagrad_options": lambda w1, b1, w2, b2: torch.optim.Adagrad(
        [w1, b1, w2, b2], lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1,
        eps=1e-8, weight_decay=0.01, foreach=False),
    "rmsprop": lambda w1, b1, w2, b2: torch.optim.RMSprop(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "rmsprop_centered_momentum": lambda w1, b1, w2, b2: torch.optim.RMSprop(
        [w1, b1, w2, b2], lr=0.01, alpha=0.9, eps=1e-6, momentum=0.5, centered=True,
        weight_decay=0.01, foreach=False),
    "adam": lambda w1, b1, w2, b2: torch.optim.Adam(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "adam_wd_amsgrad": lambda w1, b1, w2, b2: torch.optim.Adam(
        [w1, b1, w2, b2], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01,
        amsgrad=True, foreach=False),
    "adamw": lambda w1, b1, w2, b2: torch.optim.AdamW(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "adamw_amsgrad": lambda w1, b1, w2, b2: torch.optim.AdamW(
        [w1, b1, w2, b2], lr=0.01, weight_decay=0.1, amsgrad=True, foreach=False),
    "nadam": lambda w1, b1, w2, b2: torch.optim.NAdam(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "nadam_options": lambda w1, b1, w2, b2: torch.optim.NAdam(
        [w1, b1, w2, b2], lr=0.01, momentum_decay=0.01, weight_decay=0.01,
        foreach=False),
    "radam": lambda w1, b1, w2, b2: torch.optim.RAdam(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "radam_options": lambda w1, b1, w2, b2: torch.optim.RAdam(
        [w1, b1, w2, b2], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01,
        foreach=False),
    "radam_decoupled": lambda w1, b1, w2, b2: torch.optim.RAdam(
        [w1, b1, w2, b2], lr=0.01, weight_decay=0.1, decoupled_weight_decay=True,
        maximize=False, foreach=False),
    "adadelta": lambda w1, b1, w2, b2: torch.optim.Adadelta(
        [w1, b1, w2, b2], lr=1.0, foreach=False),
    "adadelta_options": lambda w1, b1, w2, b2: torch.optim.Adadelta(
        [w1, b1, w2, b2], lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01, foreach=False),
    "adamax": lambda w1, b1, w2, b2: torch.optim.Adamax(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "adamax_wd": lambda w1, b1, w2, b2: torch.optim.Adamax(
        [w1, b1, w2, b2], lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, foreach=False),
    "rprop": lambda w1, b1, w2, b2: torch.optim.Rprop(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "rprop_options": lambda w1, b1, w2, b2: torch.optim.Rprop(
        [w1, b1, w2, b2], lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.08), maximize=True,
        foreach=False),
    "asgd": lambda w1, b1, w2, b2: torch.optim.ASGD(
        [w1, b1, w2, b2], lr=0.05, foreach=False),
    # t0=10: the average starts within the 50 steps.
    "asgd_options": lambda w1, b1, w2, b2: torch.optim.ASGD(
        [w1, b1, w2, b2], lr=0.1, lambd=0.01, alpha=0.5, t0=10, weight_decay=0.01,
        foreach=False),
    "adafactor": lambda w1, b1, w2, b2: torch.optim.Adafactor(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
    "adafactor_options": lambda w1, b1, w2, b2: torch.optim.Adafactor(
        [w1, b1, w2, b2], lr=0.05, beta2_decay=-0.5, eps=(1e-6, 1e-2), d=1.5,
        weight_decay=0.01, maximize=True, foreach=False),
    # b2 is frozen (requires_grad=False) below, so it never gets a grad.
    "adam_frozen_b2": lambda w1, b1, w2, b2: torch.optim.Adam(
        [w1, b1, w2, b2], lr=0.01, foreach=False),
}
FROZEN = {"adam_frozen_b2": ("b2",)}


def make_problem():
    """The float64 problem: data and initial parameters (seed 0)."""
    torch.manual_seed(0)
    problem = {
        "x": torch.randn(8, 3, dtype=torch.float64),
        "y": torch.randn(8, 2, dtype=torch.float64),
        "w1": torch.randn(4, 3, dtype=torch.float64) * 0.5,
        "b1": torch.randn(4, dtype=torch.float64) * 0.5,
        "w2": torch.randn(2, 4, dtype=torch.float64) * 0.5,
        "b2": torch.randn(2, dtype=torch.float64) * 0.5,
    }
    return problem


def loss_fn(x, y, w1, b1, w2, b2):
    return F.mse_loss(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)


def run_config(name, dtype_name, problem):
    """Train STEPS steps; return {key: tensor} for this config and dtype."""
    dtype = DTYPES[dtype_name]
    x = problem["x"].to(dtype)
    y = problem["y"].to(dtype)
    params = {n: problem[n].to(dtype).clone().requires_grad_(True) for n in PARAM_NAMES}
    for n in FROZEN.get(name, ()):
        params[n].requires_grad_(False)
    opt = CONFIGS[name](*(params[n] for n in PARAM_NAMES))

    prefix = f"{name}.{dtype_name}"
    out = {}
    losses = []
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = loss_fn(x, y, *(params[n] for n in PARAM_NAMES))
        loss.backward()
        opt.step()
        losses.append(loss.detach().clone())
        if step in SAVE_AFTER:
            for n in PARAM_NAMES:
                out[f"{prefix}.step{step}.{n}"] = params[n].detach().clone().contiguous()
    out[f"{prefix}.losses"] = torch.stack(losses)
    if name.startswith(("asgd", "rprop")):
        # The state after the last step: ASGD's averaged weights, Rprop's step sizes.
        buffer = "ax" if name.startswith("asgd") else "step_size"
        for n in PARAM_NAMES:
            out[f"{prefix}.state.{buffer}.{n}"] = opt.state[params[n]][buffer].clone()
    if name.startswith("adafactor"):
        # Adafactor's second moments: factored for the matrices, whole for the vectors.
        for n in PARAM_NAMES:
            for buffer in ("row_var", "col_var", "variance"):
                if buffer in opt.state[params[n]]:
                    value = opt.state[params[n]][buffer].clone().contiguous()
                    out[f"{prefix}.state.{buffer}.{n}"] = value
    return out


def adafactor_conv():
    """Adafactor on a 4-d (convolution-shaped) weight: factored over its last two dims."""
    g = torch.Generator().manual_seed(3)
    w0 = torch.randn(2, 3, 2, 4, generator=g, dtype=torch.float64)
    grads = torch.randn(3, 2, 3, 2, 4, generator=g, dtype=torch.float64)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adafactor([w], lr=0.05, foreach=False)
    for k in range(3):
        w.grad = grads[k].clone()
        opt.step()
    state = opt.state[w]
    return {
        "adafactor_conv.w0": w0, "adafactor_conv.grads": grads,
        "adafactor_conv.w3": w.detach().clone(),
        "adafactor_conv.row_var": state["row_var"].clone().contiguous(),
        "adafactor_conv.col_var": state["col_var"].clone().contiguous(),
    }


def generate():
    problem = make_problem()
    tensors = {f"problem.{k}": v.contiguous() for k, v in problem.items()}
    tensors.update(adafactor_conv())
    for name in CONFIGS:
        for dtype_name in DTYPES:
            tensors.update(run_config(name, dtype_name, problem))
    path = out_path("trajectories.safetensors")
    save_file(tensors, path, metadata=metadata())
    return path
