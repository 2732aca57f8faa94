"""torch.save files for the loader of PyTorch's format (sinew_nn::load_pytorch); see README.md.

Writes `torch_save_state.pt` (a state dict of every dtype Sinew has, with views),
`torch_save_legacy.pt` (the same in the format before PyTorch 1.6),
`torch_save_checkpoint.pt` (a training checkpoint, pickle protocol 4), `torch_save_module.pt`
(`torch.save(model)`: a whole pickled module), `torch_save_int32.pt` (an int32 tensor, refused) and
`torch_save_expected.safetensors` (every tensor the two loadable files hold, contiguous, under
the keys the loader gives, plus `io.x` and `io.y`: the checkpoint's model on an input, and
`after.*`: its parameters after one more Adam step on `model(io.x).square().sum()`, and
`whole.*`: the pickled module's state dict).
"""

import argparse
import os

import torch
from safetensors.torch import save_file

from common import HERE


def state_dict():
    """Every dtype Sinew has, with views of one storage."""
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    sd = {
        "conv.weight": torch.randn(2, 1, 3, 3),
        "half": torch.randn(5).half(),
        "bfloat": torch.randn(2, 3).bfloat16(),
        "double": torch.randn(3).double(),
        "bn.num_batches_tracked": torch.tensor(7),
        "bytes": torch.arange(0, 250, 50, dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        # Views keep their storage, offset and strides in the file.
        "transposed": base.t(),
        "rows": base[1:3],
        "column": base[:, 2],
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    return sd


def state_dict_file():
    sd = state_dict()
    torch.save(sd, os.path.join(HERE, "torch_save_state.pt"))
    legacy_file()
    return {k: v.contiguous() for k, v in sd.items()}


def legacy_file():
    """The same state dict in the format before PyTorch 1.6 (a bare pickle stream)."""
    torch.save(state_dict(), os.path.join(HERE, "torch_save_legacy.pt"),
               _use_new_zipfile_serialization=False)


def checkpoint_file():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(5, 4)
    model(x).square().sum().backward()
    opt.step()
    ckpt = {
        "epoch": 3,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "best_accuracy": 0.91,
        "args": argparse.Namespace(lr=0.01, name="run"),
        "history": [0.5, 0.25],
        "note": "adam",
    }
    torch.save(ckpt, os.path.join(HERE, "torch_save_checkpoint.pt"), pickle_protocol=4)
    # Copies: the state dicts' tensors are the live ones, which the second step below updates.
    out = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    for index, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            out[f"optimizer.state.{index}.{name}"] = value.detach().clone()
    with torch.no_grad():
        out["io.x"] = x
        out["io.y"] = model(x)
    # A second step from the saved state: what resuming the checkpoint must give.
    opt.zero_grad()
    model(x).square().sum().backward()
    opt.step()
    for k, v in model.state_dict().items():
        out[f"after.{k}"] = v.detach().clone()
    return out


class Net(torch.nn.Module):
    """Children in a Sequential, batch norm buffers, a parameter-free layer and a buffer that
    state_dict() leaves out."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                            torch.nn.ReLU())
        self.fc = torch.nn.Linear(2, 2, bias=False)
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def module_file():
    """torch.save(model): the whole pickled module; returns its state dict under `whole.`."""
    torch.manual_seed(2)
    net = Net()
    net.features(torch.randn(3, 1, 4, 4))  # training mode: the running statistics move
    torch.save(net, os.path.join(HERE, "torch_save_module.pt"))
    return {f"whole.{k}": v.detach().clone() for k, v in net.state_dict().items()}


def refused_files():
    torch.save({"ids": torch.arange(3, dtype=torch.int32)},
               os.path.join(HERE, "torch_save_int32.pt"))


def make_torch_save():
    expected = state_dict_file()
    expected.update(checkpoint_file())
    expected.update(module_file())
    refused_files()
    path = os.path.join(HERE, "torch_save_expected.safetensors")
    save_file(expected, path, metadata={"generator": f"torch_save_ref.py, torch {torch.__version__}"})
    os.chmod(path, 0o644)
    for name in os.listdir(HERE):
        if name.startswith("torch_save_") and name.endswith(".pt"):
            os.chmod(os.path.join(HERE, name), 0o644)
    print(f"wrote torch_save_*.pt and {path}")
