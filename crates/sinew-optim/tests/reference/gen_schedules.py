"""Learning-rate schedule sequences. Writes schedules.json; see README.md."""

import json

import torch
from torch.optim import lr_scheduler as S
from torch.optim.swa_utils import SWALR

from common import out_path

START_LR = 0.1
SCHED_STEPS = 30

# name -> function(optimizer) -> scheduler
SCHEDULES = {
    "step_lr": lambda o: S.StepLR(o, step_size=5, gamma=0.5),
    "multi_step_lr": lambda o: S.MultiStepLR(o, milestones=[3, 7, 12], gamma=0.1),
    "exponential_lr": lambda o: S.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "linear_warmup": lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
    "warmup_then_cosine": lambda o: S.SequentialLR(
        o,
        [S.LinearLR(o, start_factor=0.1, total_iters=5),
         S.CosineAnnealingLR(o, T_max=20, eta_min=0.0)],
        milestones=[5]),
    # Stepped 30 times: OneCycleLR allows exactly total_steps steps.
    "one_cycle": lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=30, cycle_momentum=False),
    "one_cycle_three_phase_linear": lambda o: S.OneCycleLR(
        o, max_lr=0.5, total_steps=30, pct_start=0.25, anneal_strategy="linear",
        div_factor=10.0, final_div_factor=100.0, three_phase=True, cycle_momentum=False),
    "cosine_warm_restarts": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2,
                                                                     eta_min=0.001),
    "cosine_warm_restarts_fixed": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=7),
    "polynomial": lambda o: S.PolynomialLR(o, total_iters=10, power=2.0),
    "constant": lambda o: S.ConstantLR(o, factor=0.25, total_iters=4),
    "lambda": lambda o: S.LambdaLR(o, lambda e: 0.95 ** e),
    "multiplicative": lambda o: S.MultiplicativeLR(o, lambda e: 0.9 if e % 3 == 0 else 1.0),
    "cyclic_triangular": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4,
                                              cycle_momentum=False),
    "cyclic_triangular2": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                               step_size_down=5, mode="triangular2",
                                               cycle_momentum=False),
    "cyclic_exp_range": lambda o: S.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=5,
                                             mode="exp_range", gamma=0.95,
                                             cycle_momentum=False),
    # A custom scale function, given the cycle number (PyTorch's default scale_mode) or the
    # step count.
    "cyclic_custom_cycle": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                scale_fn=lambda c: 0.7 ** (c - 1),
                                                cycle_momentum=False),
    "cyclic_custom_iterations": lambda o: S.CyclicLR(o, base_lr=0.002, max_lr=0.08,
                                                     step_size_up=4, step_size_down=2,
                                                     scale_fn=lambda t: 1 / (1 + 0.1 * t),
                                                     scale_mode="iterations",
                                                     cycle_momentum=False),
    # SWA's annealing, from the optimizer's rate to swa_lr (after a cosine schedule: see
    # run_cosine_then_swa).
    "swa_cos": lambda o: SWALR(o, swa_lr=0.01, anneal_epochs=5),
    "swa_linear": lambda o: SWALR(o, swa_lr=0.03, anneal_epochs=3, anneal_strategy="linear"),
    "swa_no_anneal": lambda o: SWALR(o, swa_lr=0.02, anneal_epochs=0),
}

# name -> (function(params) -> optimizer, function(optimizer) -> scheduler): schedules that
# also cycle the momentum (SGD's momentum, Adam's beta1); each key holds {"lr": [...],
# "momentum": [...]}, 31 values each.
MOMENTUM_SCHEDULES = {
    "one_cycle_sgd_momentum": (
        lambda p: torch.optim.SGD(p, lr=START_LR, momentum=0.9, foreach=False),
        lambda o: S.OneCycleLR(o, max_lr=0.8, total_steps=30)),
    "one_cycle_adam_three_phase": (
        lambda p: torch.optim.Adam(p, lr=START_LR, foreach=False),
        lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=30, three_phase=True,
                               base_momentum=0.8, max_momentum=0.9)),
    "cyclic_sgd_momentum": (
        lambda p: torch.optim.SGD(p, lr=START_LR, momentum=0.9, foreach=False),
        lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6)),
    "cyclic_adam_exp_range": (
        lambda p: torch.optim.Adam(p, lr=START_LR, foreach=False),
        lambda o: S.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=5, mode="exp_range",
                             gamma=0.97, base_momentum=0.85, max_momentum=0.95)),
}

PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.91, 0.905, 0.9, 0.89, 0.892, 0.893, 0.894,
                   0.88, 0.881, 0.882, 0.883, 0.884, 0.885, 0.7, 0.71, 0.72, 0.73]

# name -> (function(optimizer) -> scheduler, metric sequence fed to step())
PLATEAUS = {
    "plateau_min": (
        lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=0.01,
                                      threshold_mode="rel", cooldown=1, min_lr=0.01),
        PLATEAU_METRICS),
    "plateau_max_abs": (
        lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.1, patience=1, threshold=0.005,
                                      threshold_mode="abs", cooldown=0, min_lr=0.0),
        [-m for m in PLATEAU_METRICS]),
}


def make_optimizer():
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    return torch.optim.SGD([param], lr=START_LR, foreach=False)


def current_lr(opt):
    return float(opt.param_groups[0]["lr"])


def run_schedule(make_sched):
    """lr before any step, then after each of SCHED_STEPS scheduler steps (31 values)."""
    opt = make_optimizer()
    sched = make_sched(opt)
    lrs = [current_lr(opt)]
    for _ in range(SCHED_STEPS):
        opt.step()
        sched.step()
        lrs.append(current_lr(opt))
    return lrs


def run_momentum_schedule(make_opt, make_sched):
    """lr and momentum (or beta1) before any step, then after each scheduler step."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = make_opt([param])
    sched = make_sched(opt)

    def momentum():
        g = opt.param_groups[0]
        return float(g["betas"][0] if "betas" in g else g["momentum"])
    lrs, moms = [current_lr(opt)], [momentum()]
    for _ in range(SCHED_STEPS):
        opt.step()
        sched.step()
        lrs.append(current_lr(opt))
        moms.append(momentum())
    return {"lr": lrs, "momentum": moms}


def run_plateau(make_sched, metrics):
    """lr before any step, then after each sched.step(metric) (len(metrics) + 1 values)."""
    opt = make_optimizer()
    sched = make_sched(opt)
    lrs = [current_lr(opt)]
    for m in metrics:
        opt.step()
        sched.step(m)
        lrs.append(current_lr(opt))
    return lrs


def run_cosine_then_swa():
    """PyTorch's SWA recipe: both schedulers made first, the cosine one stepped for 6 epochs,
    then SWALR from the rate the cosine left (31 values, as run_schedule)."""
    opt = make_optimizer()
    cosine = S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    swa = SWALR(opt, swa_lr=0.01, anneal_epochs=4)
    lrs = [current_lr(opt)]
    for epoch in range(SCHED_STEPS):
        opt.step()
        (swa if epoch >= 6 else cosine).step()
        lrs.append(current_lr(opt))
    return lrs


def generate():
    out = {"start_lr": START_LR, "torch_version": torch.__version__,
           "plateau_metrics": PLATEAU_METRICS}
    for name, make_sched in SCHEDULES.items():
        out[name] = run_schedule(make_sched)
    for name, (make_opt, make_sched) in MOMENTUM_SCHEDULES.items():
        out[name] = run_momentum_schedule(make_opt, make_sched)
    for name, (make_sched, metrics) in PLATEAUS.items():
        out[name] = run_plateau(make_sched, metrics)
    out["cosine_then_swa"] = run_cosine_then_swa()
    path = out_path("schedules.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    return path
