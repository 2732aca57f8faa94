"""init.json: calculate_gain values and PyTorch's default-init bounds."""
import json
import math
import os

import torch
from torch import nn

from common import HERE


def gains():
    def g(*args):
        return float(nn.init.calculate_gain(*args))

    return {
        "linear": g("linear"),
        "conv2d": g("conv2d"),
        "sigmoid": g("sigmoid"),
        "tanh": g("tanh"),
        "relu": g("relu"),
        "leaky_relu": g("leaky_relu"),          # default negative_slope 0.01
        "leaky_relu_0.2": g("leaky_relu", 0.2),
        "selu": g("selu"),
    }


def default_bounds(name, make, fan_in, trials=20):
    """reset_parameters(): weight ~ kaiming_uniform_(a=sqrt(5)), bias ~ U(-1/sqrt(fan_in), ..).

    kaiming bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),
    so the weight bound is 1/sqrt(fan_in), the same as the bias bound.
    """
    a = math.sqrt(5)
    gain = math.sqrt(2.0 / (1 + a * a))
    assert math.isclose(gain * math.sqrt(3.0 / fan_in), 1.0 / math.sqrt(fan_in))
    weight_bound = bias_bound = 1.0 / math.sqrt(fan_in)
    wmax = bmax = 0.0
    for seed in range(trials):
        torch.manual_seed(seed)
        m = make()
        wmax = max(wmax, m.weight.abs().max().item())
        bmax = max(bmax, m.bias.abs().max().item())
    assert wmax <= weight_bound and bmax <= bias_bound, name
    assert wmax > 0.95 * weight_bound, (name, wmax, weight_bound)  # uniform fills the range
    return {
        "module": repr(make()),
        "fan_in": fan_in,
        "weight_shape": list(make().weight.shape),
        "bias_shape": list(make().bias.shape),
        "weight_bound": weight_bound,
        "bias_bound": bias_bound,
        "observed_weight_max_abs": wmax,
        "observed_bias_max_abs": bmax,
        "observed_trials": trials,
    }


def make_init():
    data = {
        "torch_version": torch.__version__,
        "gain": gains(),
        "defaults": {
            "linear_20_30": default_bounds("linear_20_30", lambda: nn.Linear(20, 30), 20),
            "conv2d_3_8_5": default_bounds("conv2d_3_8_5", lambda: nn.Conv2d(3, 8, 5), 3 * 5 * 5),
        },
    }
    path = os.path.join(HERE, "init.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return path
