"""Shared helpers for the sinew-nn reference generators (see README.md)."""
import json
import os

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def setup():
    """CPU, float32, deterministic kernels."""
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def t(x):
    """Detached, contiguous, owned copy suitable for safetensors."""
    return x.detach().clone().contiguous()


def write(name, tensors, meta=None):
    """Write tensors next to this script; `meta` (a dict) goes into the header."""
    # One metadata key only: safetensors writes the metadata map in hash order,
    # so several keys would make the bytes differ from run to run.
    info = {"torch_version": torch.__version__, "cases": meta or {}}
    metadata = {"reference": json.dumps(info, sort_keys=True)}
    path = os.path.join(HERE, name)
    save_file({k: t(v) for k, v in tensors.items()}, path, metadata=metadata)
    os.chmod(path, 0o644)  # safetensors creates files 0600
    print(f"wrote {path} ({len(tensors)} tensors, {os.path.getsize(path)} bytes)")
    return path
