"""SmallCnn interop reference.

  python small_cnn.py                 write small_cnn.safetensors and small_cnn_io.safetensors
  python small_cnn.py check PATH      load Sinew-written weights (strict), print eval logits
                                      for x of small_cnn_io.safetensors; if a logits file
                                      (PATH.logits.safetensors, key "logits") exists, compare
                                      and exit 1 when max |diff| > 1e-5.
"""
import os
import sys

import torch
from torch import nn
from safetensors.torch import load_file, save_file

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, setup, t  # noqa: E402

TOL = 1e-5


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Dropout(0.25))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def make_small_cnn():
    torch.manual_seed(0)
    model = SmallCnn()
    bn = model.features[1]
    with torch.no_grad():
        bn.weight.copy_(torch.randn(4) * 0.5 + 1.0)
        bn.bias.copy_(torch.randn(4) * 0.5)
        bn.running_mean.copy_(torch.randn(4) * 0.5)
        bn.running_var.copy_(torch.rand(4) + 0.5)
    state = {k: t(v) for k, v in model.state_dict().items()}
    save_file(state, os.path.join(HERE, "small_cnn.safetensors"),
              metadata={"torch_version": torch.__version__})

    x = torch.randn(2, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    with torch.no_grad():
        model(x)  # updates features.1 running stats (dropout comes after BN)
    io = {"x": x, "logits_eval": logits_eval,
          "running_mean_after": bn.running_mean, "running_var_after": bn.running_var}
    save_file({k: t(v) for k, v in io.items()}, os.path.join(HERE, "small_cnn_io.safetensors"),
              metadata={"torch_version": torch.__version__})
    for f in ("small_cnn.safetensors", "small_cnn_io.safetensors"):
        p = os.path.join(HERE, f)
        os.chmod(p, 0o644)  # safetensors creates files 0600
        print(f"wrote {p} ({os.path.getsize(p)} bytes)")


def logits_path(path):
    """foo.safetensors -> foo.logits.safetensors (also accepts foo.safetensors.logits.safetensors)."""
    cands = []
    if path.endswith(".safetensors"):
        cands.append(path[: -len(".safetensors")] + ".logits.safetensors")
    cands.append(path + ".logits.safetensors")
    return next((c for c in cands if os.path.exists(c)), None)


def check(path):
    model = SmallCnn()
    state = load_file(path)
    # load_state_dict alone is not enough: BatchNorm silently fills a missing
    # num_batches_tracked and copy_ silently casts dtypes. Check keys/dtypes/shapes.
    want = model.state_dict()
    bad = [f"missing {k}" for k in want if k not in state]
    bad += [f"unexpected {k}" for k in state if k not in want]
    bad += [f"{k}: {state[k].dtype}{tuple(state[k].shape)}, want {v.dtype}{tuple(v.shape)}"
            for k, v in want.items()
            if k in state and (state[k].dtype != v.dtype or state[k].shape != v.shape)]
    if bad:
        print("FAIL: state dict mismatch:\n  " + "\n  ".join(bad))
        return 1
    model.load_state_dict(state, strict=True)
    model.eval()
    x = load_file(os.path.join(HERE, "small_cnn_io.safetensors"))["x"]
    with torch.no_grad():
        logits = model(x)
    torch.set_printoptions(precision=6, linewidth=120)
    print("eval logits:\n", logits)
    lp = logits_path(path)
    if lp is None:
        print("no logits file next to", path, "- nothing to compare")
        return 0
    stored = load_file(lp)
    key = "logits" if "logits" in stored else "expected_logits"
    expected = stored[key].to(logits.dtype)
    if expected.shape != logits.shape:
        print(f"FAIL: {lp}:{key} has shape {tuple(expected.shape)}, want {tuple(logits.shape)}")
        return 1
    diff = (logits - expected).abs().max().item()
    print(f"max abs diff vs {lp}:{key} = {diff:.3e} (tolerance {TOL:g})")
    return 1 if diff > TOL else 0


if __name__ == "__main__":
    setup()
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    elif len(sys.argv) == 1:
        make_small_cnn()
    else:
        sys.exit(__doc__)
