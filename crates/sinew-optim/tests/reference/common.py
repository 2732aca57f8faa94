"""Shared setup for the reference generators: determinism and output paths."""

import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def make_deterministic():
    """One thread, deterministic kernels, CPU only."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def out_path(name):
    """Outputs are written next to the scripts, whatever the cwd."""
    return os.path.join(HERE, name)


def metadata():
    """Single-key safetensors metadata (several keys are written in random order)."""
    return {"generator": f"make_reference.py, torch {torch.__version__}"}
