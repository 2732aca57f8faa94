"""PyTorch eager's column of `cargo xtask bench` (sinew-devtools `bench`): the workloads of
`src/gpu_workloads.rs` under the same names, with the same sizes, models, optimizer and run
counts, printed in the CPU reference's line format. The models are torchvision's ResNet-18 and
VGG-16-BN (10 classes, 32x32 inputs), written out here so torchvision is not needed.

Usage: python torch_gpu_bench.py [--device cuda|cpu] [--quick] [--only PATTERN]"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NAMES = [
    "gemm f32 1024", "gemm f32 2048", "gemm f32 4096",
    "gemm f16 1024", "gemm f16 2048", "gemm f16 4096", "gemm f32 4095", "gemm f16 4095",
    "conv 64c 32x32 b128 f+b", "conv 128c 16x16 b128 f+b", "conv 256c 8x8 b128 f+b",
    "mlp step b64 f32", "mlp step b64 mixed", "lenet5 step b64 f32", "lenet5 step b64 mixed",
    "resnet18 step b128 f32", "resnet18 step b128 mixed",
    "vgg16 step b128 f32", "vgg16 step b128 mixed",
    "resnet18 infer b128 f32", "resnet18 infer b128 mixed",
    # Full-f32 convolutions (cudnn.allow_tf32 off; on by default, as in Sinew).
    "conv 64c 32x32 b128 f+b no-tf32", "resnet18 step b128 f32 no-tf32",
    # f32 matrix products in TF32 (cuda.matmul.allow_tf32 on; off by default, as in Sinew).
    "gemm f32 4096 tf32",
]
NO_TF32 = " no-tf32"
TF32 = " tf32"


def heavy(name):
    return "resnet18" in name or "vgg16" in name or name.endswith(("4096", "4095"))


def plan(name, device, quick):
    if quick:
        return 1, 1
    cpu = device.type == "cpu"
    return {(True, True): (1, 3), (True, False): (2, 10),
            (False, True): (5, 20), (False, False): (10, 50)}[(cpu, heavy(name))]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, device, warm, reps):
    for _ in range(warm):
        fn()
        sync(device)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync(device)
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts), min(ts), max(ts)


def line(name, s, extra):
    med, lo, hi = s
    print(f"{name:28s} median {med:9.3f} ms  (min {lo:.3f}, max {hi:.3f})  {extra}", flush=True)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def resnet18(classes=10):
    layers, cin = [], 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, classes))


def vgg16_bn(classes=10):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                         nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, classes))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                         nn.ReLU(), nn.Linear(512, 10))


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


MODELS = {"mlp": (mlp, (1, 28, 28)), "lenet5": (lenet5, (1, 28, 28)),
          "resnet18": (resnet18, (3, 32, 32)), "vgg16": (vgg16_bn, (3, 32, 32))}


def run(name, device, quick):
    if name.endswith(NO_TF32):
        before = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            run_workload(name, name[:-len(NO_TF32)], device, quick)
        finally:
            torch.backends.cudnn.allow_tf32 = before
    elif name.endswith(TF32):
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            run_workload(name, name[:-len(TF32)], device, quick)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before
    else:
        run_workload(name, name, device, quick)


def run_workload(name, base, device, quick):
    """Runs workload `base`, printing its line as `name`."""
    warm, reps = plan(base, device, quick)
    torch.manual_seed(0)
    words = base.split(" ")
    if words[0] == "gemm":
        n = 64 if quick else int(words[2])
        dtype = torch.float16 if words[1] == "f16" else torch.float32
        if device.type == "cpu" and dtype == torch.float16:
            dtype = torch.bfloat16  # CPU f16 GEMM is not a fair stand-in
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        s = timeit(lambda: a @ b, device, warm, reps)
        line(name, s, f"{2 * n ** 3 / s[0] / 1e9:.2f} TFLOP/s")
    elif words[0] == "conv":
        c, side = int(words[1][:-1]), int(words[2].split("x")[0])
        bs, c = (2, min(c, 8)) if quick else (128, c)
        conv = nn.Conv2d(c, c, 3, padding=1).to(device)
        x = torch.randn(bs, c, side, side, device=device, requires_grad=True)

        def step():
            conv.zero_grad(set_to_none=True)
            x.grad = None
            conv(x).sum().backward()
        s = timeit(step, device, warm, reps)
        flops = 3 * 2 * bs * side * side * c * c * 9
        line(name, s, f"{flops / s[0] / 1e9:.2f} TFLOP/s")
    else:
        make, shape = MODELS[words[0]]
        bs = 2 if quick else int(words[2][1:])
        mixed = words[3] == "mixed"
        model = make().to(device)
        x = torch.randn(bs, *shape, device=device)
        amp = dict(device_type=device.type, dtype=torch.float16 if device.type == "cuda"
                   else torch.bfloat16, enabled=mixed)
        if words[1] == "infer":
            model.eval()

            def infer():
                with torch.no_grad(), torch.autocast(**amp):
                    model(x)
            s = timeit(infer, device, warm, reps)
        else:
            y = torch.randint(0, 10, (bs,), device=device)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            scaler = torch.amp.GradScaler(device.type, enabled=mixed and device.type == "cuda")

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast(**amp):
                    loss = F.cross_entropy(model(x), y)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                loss.item()
            s = timeit(step, device, warm, reps)
        line(name, s, f"{bs / s[0] * 1e3:.0f} samples/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {gpu}", flush=True)
    for name in NAMES:
        if args.only in name:
            run(name, device, args.quick)


if __name__ == "__main__":
    main()
