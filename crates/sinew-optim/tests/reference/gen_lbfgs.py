"""L-BFGS references (torch.optim.LBFGS). Writes lbfgs.safetensors; see README.md.

Cases, each a few step(closure) calls, recording after each call the parameters, the returned
loss and the counters (func_evals, n_iter), and after the last the state (d, t, H_diag,
prev_flat_grad, prev_loss, the number of curvature pairs and their ro):

- rosenbrock: f64 x = [-1.5, 2] on (1 - x0)^2 + 100 (x1 - x0^2)^2, strong-Wolfe line search,
  history_size 10, 3 steps (default max_iter 20).
- mlp_f64 / mlp_f32: Linear(3, 4) -> Tanh -> Linear(4, 1) (torch.manual_seed(0)) on an MSE loss
  over 8 fixed samples, no line search, lr 0.5, history_size 3 (the history wraps), max_iter 6,
  4 steps.
- mlp_wolfe: the f64 network with the strong-Wolfe line search, history_size 5, max_iter 8,
  3 steps.
"""

import torch
from safetensors.torch import save_file

from common import metadata, out_path


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def net(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).to(dtype)


def record(tensors, case, opt, named, steps, closure):
    for k in range(steps):
        loss = opt.step(closure)
        state = opt.state[opt.param_groups[0]["params"][0]]
        for name, p in named:
            tensors[f"{case}.step{k}.{name}"] = p.detach().clone().contiguous()
        tensors[f"{case}.step{k}.loss"] = loss.detach().reshape(1).to(torch.float64)
        tensors[f"{case}.step{k}.func_evals"] = torch.tensor([float(state["func_evals"])],
                                                             dtype=torch.float64)
        tensors[f"{case}.step{k}.n_iter"] = torch.tensor([float(state["n_iter"])],
                                                         dtype=torch.float64)
    state = opt.state[opt.param_groups[0]["params"][0]]
    as_f64 = lambda v: torch.as_tensor(v, dtype=torch.float64).reshape(1)  # noqa: E731
    tensors[f"{case}.state.d"] = state["d"].detach().clone()
    tensors[f"{case}.state.prev_flat_grad"] = state["prev_flat_grad"].detach().clone()
    tensors[f"{case}.state.t"] = as_f64(state["t"])
    tensors[f"{case}.state.H_diag"] = as_f64(state["H_diag"])
    tensors[f"{case}.state.prev_loss"] = as_f64(state["prev_loss"])
    tensors[f"{case}.state.ro"] = torch.stack([as_f64(r)[0] for r in state["ro"]])


def rosenbrock_case(tensors):
    x = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    record(tensors, "rosenbrock", opt, [("x", x)], 3, closure)


def mlp_case(tensors, case, dtype, steps, **options):
    model = net(dtype)
    if case == "mlp_f64":
        for name, value in model.state_dict().items():
            tensors[f"mlp.init.{name}"] = value.detach().clone()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randn(8, 1, generator=g, dtype=torch.float64).to(dtype)
    tensors["mlp.x"], tensors["mlp.y"] = x.double(), y.double()
    opt = torch.optim.LBFGS(model.parameters(), **options)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    record(tensors, case, opt, list(model.named_parameters()), steps, closure)


def generate():
    tensors = {}
    rosenbrock_case(tensors)
    plain = {"lr": 0.5, "history_size": 3, "max_iter": 6}
    mlp_case(tensors, "mlp_f64", torch.float64, 4, **plain)
    mlp_case(tensors, "mlp_f32", torch.float32, 4, **plain)
    mlp_case(tensors, "mlp_wolfe", torch.float64, 3, history_size=5, max_iter=8,
             line_search_fn="strong_wolfe")
    path = out_path("lbfgs.safetensors")
    save_file(tensors, path, metadata=metadata())
    return path
