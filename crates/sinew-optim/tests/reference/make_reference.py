#!/usr/bin/env python3
"""Generate the PyTorch reference values read by sinew-optim's tests.

Usage (from anywhere):  python crates/sinew-optim/tests/reference/make_reference.py
Outputs are written next to this script. See README.md.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import gen_clip  # noqa: E402
import gen_grad_scaler  # noqa: E402
import gen_lbfgs  # noqa: E402
import gen_schedules  # noqa: E402
import gen_swa  # noqa: E402
import gen_trajectories  # noqa: E402
from common import make_deterministic  # noqa: E402


def main():
    make_deterministic()
    print(f"torch {torch.__version__}")
    for gen in (gen_trajectories, gen_schedules, gen_clip, gen_grad_scaler, gen_swa,
                gen_lbfgs):
        path = gen.generate()
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
