"""PyTorch's counterpart of `bench --cpu`'s `resnet20 step b64` line (not part of the shared
reference script): ResNet-20 for CIFAR-10 (He et al. 2016, option A shortcuts: every other
pixel and zero channels, as in sinew's zoo), batch 64, cross-entropy, SGD lr 0.01 momentum 0.9, 2 threads; prints a line in the
reference's format. Run as `OMP_WAIT_POLICY=PASSIVE python torch_resnet20_step.py`."""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def shortcut(self, x):
        if self.stride == 1 and self.extra == 0:
            return x
        sub = x[:, :, :: self.stride, :: self.stride]
        half = self.extra // 2
        return F.pad(sub, (0, 0, 0, 0, half, self.extra - half))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3):
                blocks.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ResNet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(20):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    med = (times[9] + times[10]) / 2
    print(
        f"{'resnet20 step b64':28s} median {med:9.3f} ms  (min {times[0]:.3f}, "
        f"max {times[-1]:.3f})  {64 / med * 1e3:.0f} samples/s"
    )


if __name__ == "__main__":
    main()
