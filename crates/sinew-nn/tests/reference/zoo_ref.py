"""zoo.txt: torchvision's state_dict keys, shapes and parameter counts for the zoo models
Sinew reproduces (needs `pip install torchvision` in the venv). One line per entry:
`model key dtype d0xd1x...`, then `model #parameters N`."""
import os

import torchvision.models as tvm

from common import HERE

MODELS = {
    "resnet18": lambda: tvm.resnet18(),
    "resnet34": lambda: tvm.resnet34(),
    "resnet50": lambda: tvm.resnet50(),
    "alexnet": lambda: tvm.alexnet(),
    "vgg16": lambda: tvm.vgg16(),
    "vgg16_bn": lambda: tvm.vgg16_bn(),
}


def make_zoo():
    lines = []
    for name, build in MODELS.items():
        model = build()
        for key, value in model.state_dict().items():
            shape = "x".join(str(d) for d in value.shape) or "scalar"
            lines.append(f"{name} {key} {str(value.dtype).removeprefix('torch.')} {shape}")
        count = sum(p.numel() for p in model.parameters())
        lines.append(f"{name} #parameters {count}")
    with open(os.path.join(HERE, "zoo.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
