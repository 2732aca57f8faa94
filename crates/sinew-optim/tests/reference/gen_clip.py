"""Gradient clipping references. Writes clip.safetensors; see README.md."""

import torch
from safetensors.torch import save_file

from common import metadata, out_path

GRAD_SHAPES = {"g0": (3, 4), "g1": (5,), "g2": (2, 2, 2)}

# name -> (max_norm, norm_type) for clip_grad_norm_
NORM_CASES = {
    "norm2": (1.0, 2.0),
    "norminf": (0.5, float("inf")),
    "noclip": (1e6, 2.0),
}
CLIP_VALUE = 0.3


def make_grads():
    torch.manual_seed(0)
    return {n: torch.randn(*s, dtype=torch.float64) * 2 for n, s in GRAD_SHAPES.items()}


def params_with_grads(grads):
    params = {}
    for n, g in grads.items():
        p = torch.zeros_like(g, requires_grad=True)
        p.grad = g.clone()
        params[n] = p
    return params


def generate():
    grads = make_grads()
    tensors = {f"input.{n}": g for n, g in grads.items()}
    for case, (max_norm, norm_type) in NORM_CASES.items():
        params = params_with_grads(grads)
        total = torch.nn.utils.clip_grad_norm_(
            list(params.values()), max_norm=max_norm, norm_type=norm_type, foreach=False)
        tensors[f"{case}.total"] = total.detach().clone().reshape(())
        for n, p in params.items():
            tensors[f"{case}.{n}"] = p.grad.clone()
    params = params_with_grads(grads)
    torch.nn.utils.clip_grad_value_(list(params.values()), clip_value=CLIP_VALUE, foreach=False)
    for n, p in params.items():
        tensors[f"value.{n}"] = p.grad.clone()
    path = out_path("clip.safetensors")
    save_file(tensors, path, metadata=metadata())
    return path
