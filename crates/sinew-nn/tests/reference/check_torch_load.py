"""Checks that PyTorch reads a file Sinew's `save_pytorch` wrote: `torch.load` with its default
`weights_only=True` (no code runs), every tensor equal to the expected one.

    python check_torch_load.py SINEW_FILE.pt EXPECTED.safetensors [PREFIX]

EXPECTED is a safetensors file holding the same tensors (keys with PREFIX in front, if given).
"""

import sys

import torch
from safetensors.torch import load_file


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    prefix = sys.argv[3] if len(sys.argv) > 3 else ""
    loaded = torch.load(path)  # weights_only=True is PyTorch's default
    expected = {k[len(prefix):]: v for k, v in load_file(expected_path).items()
                if k.startswith(prefix) and not k.startswith("io.")}
    assert loaded and set(loaded) <= set(expected), (list(loaded), list(expected))
    for key, tensor in loaded.items():
        want = expected[key]
        assert tensor.dtype == want.dtype and tensor.shape == want.shape, key
        assert torch.equal(tensor, want), key
    print(f"{path}: torch.load read {len(loaded)} tensors, all equal")


if __name__ == "__main__":
    main()
