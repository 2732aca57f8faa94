"""Regenerate every reference file in this folder (see README.md).

Run from anywhere:  /tmp/torchvenv/bin/python crates/sinew-nn/tests/reference/make_reference.py
Outputs are written next to this script.
"""
import os
import sys
import warnings

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import setup  # noqa: E402
from init_ref import make_init  # noqa: E402
from layers_ref import make_layers  # noqa: E402
from losses_ref import make_losses  # noqa: E402
from small_cnn import make_small_cnn  # noqa: E402
from torch_save_ref import make_torch_save  # noqa: E402
from zoo_ref import make_zoo  # noqa: E402


def main():
    setup()
    # kl_div(reduction="mean") warns that it is not the mathematical KL mean; expected.
    warnings.filterwarnings("ignore", message=".*reduction: 'mean'.*")
    # conv2d_same has an even kernel width on purpose (asymmetric padding).
    warnings.filterwarnings("ignore", message=".*padding='same' with even kernel.*")
    make_layers()
    make_losses()
    make_init()
    make_small_cnn()
    make_torch_save()
    make_zoo()


if __name__ == "__main__":
    main()
