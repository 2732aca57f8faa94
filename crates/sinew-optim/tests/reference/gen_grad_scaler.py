"""GradScaler references. Writes grad_scaler.json; see README.md.

A 3 -> 2 linear layer (f32, weights from a formula, no random numbers) trained 12 steps by
SGD(lr=0.1) under GradScaler(init_scale=1024, growth_interval=3). The loss is
`(model(x) * k).square().mean()` where `k` is 1 on most steps and 1e30 on steps 4, 5 and 9, so the
scaled gradients overflow there and the step must be skipped. Recorded after each step: whether
the weights changed, the scale after update(), and the final weights and state_dict.
"""

import json

import torch

from common import out_path

OVERFLOW_STEPS = {4, 5, 9}


def generate():
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]))
        model.bias.copy_(torch.tensor([0.05, -0.05]))
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0], [0.0, -1.5, 1.0], [2.0, 1.0, -1.0]])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    steps = []
    for i in range(12):
        k = 1e30 if i in OVERFLOW_STEPS else 1.0
        opt.zero_grad()
        loss = (model(x) * k).square().mean()
        before = model.weight.detach().clone()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        stepped = not torch.equal(before, model.weight.detach())
        steps.append({"k": k, "stepped": stepped, "scale": scaler.get_scale()})
    state = scaler.state_dict()
    out = {
        "generator": f"torch {torch.__version__}",
        "steps": steps,
        "weight": model.weight.detach().flatten().tolist(),
        "bias": model.bias.detach().tolist(),
        "state": {k: (int(v) if k in ("growth_interval", "_growth_tracker") else float(v)) for k, v in state.items()},
    }
    path = out_path("grad_scaler.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    return path
