"""layers.safetensors: forward/backward references for nn modules.

Keys per case C (see README.md):
  C.x, C.p.<state_dict key>, C.gy, C.y, C.gx, C.g.<param>, C.after.<buffer>
"""
import torch
from torch import nn

from common import t, write


def randomise(m):
    """Overwrite every parameter (and BN running stats) so defaults hide nothing."""
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.5)
            m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


def run_case(out, meta, name, module, x):
    """Record one module: state before, y, gy, gx, parameter grads, buffers after."""
    torch.manual_seed(0)  # every case starts from the same seed: independent of order
    randomise(module)
    if name.endswith("_eval"):
        module.eval()
    else:
        module.train()
    meta[name] = repr(module)
    out[f"{name}.x"] = x
    for k, v in module.state_dict().items():
        out[f"{name}.p.{k}"] = t(v)
    is_index = not x.is_floating_point()
    xin = x.clone() if is_index else x.clone().requires_grad_(True)
    y = module(xin)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    out[f"{name}.gy"] = gy
    out[f"{name}.y"] = y
    if not is_index:
        out[f"{name}.gx"] = xin.grad
    for k, p in module.named_parameters():
        out[f"{name}.g.{k}"] = p.grad
    if module.training:
        for k, b in module.named_buffers():
            out[f"{name}.after.{k}"] = b
    return module


class PoolUnpool(nn.Module):
    """Max pooling then MaxUnpool2d at its indices (SegNet's pair), into `size` planes."""

    def __init__(self, kernel, stride, padding, size=None):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel, stride, padding, return_indices=True)
        self.unpool = nn.MaxUnpool2d(kernel, stride, padding)
        self.size = size

    def forward(self, x):
        y, i = self.pool(x)
        # PyTorch flags unpooling as nondeterministic (duplicate indices race); here any
        # duplicate index comes from overlapping windows picking the same element, so every
        # racing write stores the same value.
        torch.use_deterministic_algorithms(False)
        try:
            return self.unpool(y, i, output_size=self.size)
        finally:
            torch.use_deterministic_algorithms(True)


def seeded_randn(*shape, scale=1.0):
    torch.manual_seed(1)
    return torch.randn(*shape) * scale


def linear_conv_cases(out, meta):
    r = seeded_randn
    run_case(out, meta, "linear", nn.Linear(5, 3), r(4, 5))
    run_case(out, meta, "linear_nobias", nn.Linear(5, 3, bias=False), r(2, 3, 5))
    run_case(out, meta, "conv2d", nn.Conv2d(3, 4, 3, padding=1), r(2, 3, 6, 6))
    run_case(out, meta, "conv2d_grouped",
             nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), r(2, 4, 7, 7))
    # Even kernel width 4 with padding='same': PyTorch pads 1 left, 2 right.
    run_case(out, meta, "conv2d_same", nn.Conv2d(3, 4, (3, 4), padding="same"), r(2, 3, 6, 7))
    run_case(out, meta, "conv1d", nn.Conv1d(3, 4, 3, stride=2, padding=1), r(2, 3, 9))
    run_case(out, meta, "conv_transpose2d",
             nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), r(2, 3, 4, 4))
    run_case(out, meta, "conv_transpose1d",
             nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1), r(2, 3, 5))
    run_case(out, meta, "conv_transpose1d_dilated",
             nn.ConvTranspose1d(2, 3, 2, stride=3, dilation=2, bias=False), r(2, 2, 4))
    run_case(out, meta, "conv_transpose2d_grouped",
             nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
             r(2, 4, 3, 3))
    run_case(out, meta, "conv_transpose1d_grouped",
             nn.ConvTranspose1d(6, 3, 2, stride=3, dilation=2, groups=3, bias=False), r(2, 6, 4))


def pool_cases(out, meta):
    r = seeded_randn  # continuous random values: no ties inside max windows
    run_case(out, meta, "maxpool2d", nn.MaxPool2d(2), r(2, 3, 6, 6))
    run_case(out, meta, "maxpool2d_ceil", nn.MaxPool2d(3, stride=2, ceil_mode=True), r(2, 3, 8, 8))
    run_case(out, meta, "maxpool1d", nn.MaxPool1d(3, stride=2, padding=1), r(2, 3, 9))
    run_case(out, meta, "avgpool2d", nn.AvgPool2d(3, stride=2, padding=1), r(2, 3, 7, 7))
    run_case(out, meta, "avgpool2d_nopad",
             nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), r(2, 3, 7, 7))
    run_case(out, meta, "avgpool2d_ceil", nn.AvgPool2d(3, stride=2, ceil_mode=True), r(2, 3, 8, 8))
    run_case(out, meta, "avgpool1d", nn.AvgPool1d(2), r(2, 3, 8))
    run_case(out, meta, "adaptive_avg", nn.AdaptiveAvgPool2d((2, 3)), r(2, 3, 7, 8))
    run_case(out, meta, "adaptive_max", nn.AdaptiveMaxPool2d(3), r(2, 3, 7, 8))
    run_case(out, meta, "adaptive_avg1d", nn.AdaptiveAvgPool1d(3), r(2, 3, 8))
    run_case(out, meta, "max_unpool2d", PoolUnpool(2, 2, 0), r(2, 3, 4, 6))
    run_case(out, meta, "max_unpool2d_padded", PoolUnpool(3, 2, 1, size=(6, 5)), r(1, 2, 5, 5))
    run_case(out, meta, "adaptive_max1d", nn.AdaptiveMaxPool1d(5), r(2, 3, 7))
    run_case(out, meta, "lppool2d", nn.LPPool2d(2, (2, 3), stride=(1, 2)), r(2, 3, 5, 7))
    run_case(out, meta, "softmax2d", nn.Softmax2d(), r(2, 3, 2, 4, scale=3.0))
    # p = 3 and 1.5 on positive inputs (a negative mean of x^p has no real root).
    run_case(out, meta, "lppool2d_p3_ceil", nn.LPPool2d(3, 2, ceil_mode=True),
             r(2, 2, 5, 5).abs() + 0.1)
    run_case(out, meta, "lppool1d", nn.LPPool1d(1.5, 3, stride=2), r(2, 3, 9).abs() + 0.1)


def norm_cases(out, meta):
    r = seeded_randn
    x_bn = r(4, 3, 5, 5, scale=2.0) + 1.0  # non-zero mean, non-unit variance
    run_case(out, meta, "batchnorm2d", nn.BatchNorm2d(3), x_bn)
    run_case(out, meta, "batchnorm2d_eval", nn.BatchNorm2d(3), x_bn)
    run_case(out, meta, "batchnorm1d", nn.BatchNorm1d(4), r(6, 4, scale=2.0) - 0.5)
    run_case(out, meta, "batchnorm1d_3d", nn.BatchNorm1d(4), r(3, 4, 5, scale=2.0) + 0.5)
    run_case(out, meta, "batchnorm2d_noaffine", nn.BatchNorm2d(3, affine=False), x_bn)

    # momentum=None (cumulative moving average). gy/gx/g.* describe the FIRST
    # forward only; the second forward (x2 -> y2) runs without grad, and
    # after.* holds the buffers after BOTH forwards (num_batches_tracked == 2).
    name = "batchnorm2d_cumulative"
    m = run_case(out, meta, name, nn.BatchNorm2d(3, momentum=None), x_bn)
    torch.manual_seed(2)
    x2 = torch.randn(4, 3, 5, 5) * 0.7 - 0.3
    with torch.no_grad():
        y2 = m(x2)
    out[f"{name}.x2"] = x2
    out[f"{name}.y2"] = y2
    for k, b in m.named_buffers():
        out[f"{name}.after.{k}"] = b

    run_case(out, meta, "layernorm", nn.LayerNorm([4, 5]), r(3, 4, 5, scale=2.0) + 1.0)
    run_case(out, meta, "groupnorm", nn.GroupNorm(2, 4), r(2, 4, 3, 3, scale=2.0) + 1.0)
    # Local response norm: the defaults (alpha 1e-4), an even window over [n, c, l] with
    # strong options, and a window wider than the channels over 5 dims.
    run_case(out, meta, "lrn", nn.LocalResponseNorm(3), r(2, 5, 4, 4, scale=3.0))
    run_case(out, meta, "lrn_options", nn.LocalResponseNorm(4, alpha=0.5, beta=0.6, k=2.0),
             r(2, 6, 5, scale=2.0))
    run_case(out, meta, "lrn_wide", nn.LocalResponseNorm(9, alpha=0.8, beta=0.75, k=0.5),
             r(2, 3, 2, 3, 2, scale=2.0))


def embedding_cases(out, meta):
    # Row 0 (padding_idx) is randomised too: the forward still returns it,
    # only its gradient must be zero.
    x = torch.tensor([[0, 3, 9, 0, 3], [1, 0, 5, 5, 7]], dtype=torch.int64)
    run_case(out, meta, "embedding", nn.Embedding(10, 4, padding_idx=0), x)


def activation_cases(out, meta):
    torch.manual_seed(3)
    x = torch.randn(4, 6) * 3.0
    x[0, 0] = 25.0
    x[0, 1] = -25.0
    acts = {
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(0.1),
        "elu": nn.ELU(alpha=1.0),
        "gelu": nn.GELU(),
        "gelu_tanh": nn.GELU(approximate="tanh"),
        "silu": nn.SiLU(),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
        "softmax": nn.Softmax(dim=1),
        "log_softmax": nn.LogSoftmax(dim=1),
        "softplus": nn.Softplus(beta=2, threshold=10),
    }
    for name, m in acts.items():
        run_case(out, meta, name, m, x)


def piecewise_activation_cases(out, meta):
    """The piecewise activations and the rest of PyTorch's activation modules, on an input that
    holds every kink exactly (PyTorch's backward picks a side there) and values past both
    saturations."""
    torch.manual_seed(4)
    x = torch.randn(4, 8) * 3.0
    x.view(-1)[:16] = torch.tensor([-3.0, 3.0, -1.0, 1.0, 0.0, 6.0, 0.5, -0.5,
                                    0.1, -1.5, 2.0, 25.0, -25.0, 7.0, -6.0, 0.25])
    acts = {
        "hardtanh": nn.Hardtanh(),
        "hardtanh_bounds": nn.Hardtanh(-1.5, 2.0),
        "relu6": nn.ReLU6(),
        "hardsigmoid": nn.Hardsigmoid(),
        "hardswish": nn.Hardswish(),
        "softshrink": nn.Softshrink(),
        "hardshrink": nn.Hardshrink(1.0),
        "threshold": nn.Threshold(0.1, 20.0),
        "mish": nn.Mish(),
        "selu": nn.SELU(),
        "celu": nn.CELU(alpha=1.5),
        "softsign": nn.Softsign(),
        "tanhshrink": nn.Tanhshrink(),
        "logsigmoid": nn.LogSigmoid(),
        "glu": nn.GLU(),
        "glu_dim0": nn.GLU(dim=0),
        "softmin": nn.Softmin(dim=1),
        "prelu": nn.PReLU(),
    }
    for name, m in acts.items():
        run_case(out, meta, name, m, x)
    # One slope per channel (dim 1), on [n, c, l] with zeros and kinks in it.
    xc = seeded_randn(2, 3, 4)
    xc[0, :, 0] = 0.0
    run_case(out, meta, "prelu_channels", nn.PReLU(3), xc)


def resampling_cases(out, meta):
    """Padding modes, instance norm, unflatten, nearest upsampling and pixel shuffles."""
    r = seeded_randn
    run_case(out, meta, "reflection_pad2d", nn.ReflectionPad2d((1, 2, 2, 0)), r(2, 2, 3, 4))
    run_case(out, meta, "reflection_pad1d", nn.ReflectionPad1d((2, 1)), r(2, 3, 4))
    run_case(out, meta, "replication_pad2d", nn.ReplicationPad2d((3, 1, 0, 2)), r(2, 2, 3, 4))
    run_case(out, meta, "replication_pad1d", nn.ReplicationPad1d((1, 3)), r(2, 3, 4))
    run_case(out, meta, "circular_pad2d", nn.CircularPad2d((4, 1, 2, 3)), r(2, 2, 3, 4))
    run_case(out, meta, "circular_pad1d", nn.CircularPad1d((2, 0)), r(2, 3, 4))
    run_case(out, meta, "instancenorm2d", nn.InstanceNorm2d(3), r(2, 3, 4, 5))
    run_case(out, meta, "instancenorm2d_affine", nn.InstanceNorm2d(3, affine=True), r(2, 3, 4, 5))
    run_case(out, meta, "instancenorm1d_affine", nn.InstanceNorm1d(4, affine=True), r(2, 4, 6))
    run_case(out, meta, "unflatten", nn.Unflatten(1, (2, 3)), r(4, 6, 2))
    run_case(out, meta, "upsample_nearest2d", nn.Upsample(scale_factor=2), r(2, 3, 3, 4))
    run_case(out, meta, "upsample_nearest_frac", nn.Upsample(scale_factor=1.5), r(2, 3, 3, 5))
    run_case(out, meta, "upsample_nearest_size", nn.Upsample(size=(5, 3)), r(2, 3, 3, 4))
    run_case(out, meta, "upsample_nearest1d", nn.Upsample(scale_factor=3), r(2, 3, 4))
    run_case(out, meta, "upsample_bilinear", nn.Upsample(scale_factor=2, mode="bilinear"),
             r(2, 3, 3, 4))
    run_case(out, meta, "upsample_bilinear_corners",
             nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), r(2, 3, 3, 4))
    run_case(out, meta, "upsample_bilinear_down", nn.Upsample(scale_factor=0.6, mode="bilinear"),
             r(2, 3, 5, 7))
    run_case(out, meta, "upsample_linear1d", nn.Upsample(scale_factor=1.5, mode="linear"),
             r(2, 3, 5))
    run_case(out, meta, "pixel_shuffle", nn.PixelShuffle(2), r(2, 8, 3, 4))
    run_case(out, meta, "pixel_unshuffle", nn.PixelUnshuffle(2), r(2, 2, 4, 6))
    run_case(out, meta, "unfold",
             nn.Unfold(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
             r(2, 3, 5, 6))
    run_case(out, meta, "fold", nn.Fold(output_size=(4, 5), kernel_size=2), r(2, 12, 12))
    run_case(out, meta, "fold_strided",
             nn.Fold(output_size=(5, 5), kernel_size=3, padding=1, stride=2), r(1, 18, 9))


def shape_cases(out, meta):
    r = seeded_randn
    run_case(out, meta, "flatten", nn.Flatten(), r(2, 3, 2, 2))
    run_case(out, meta, "zeropad2d", nn.ZeroPad2d((1, 2, 0, 1)), r(1, 2, 3, 3))
    # Negative padding crops: left -1, right +1, top +2, bottom -1.
    run_case(out, meta, "constantpad_crop", nn.ConstantPad2d((-1, 1, 2, -1), 0.5), r(1, 2, 4, 4))


def unbatched_cases(out, meta):
    """One sample without its batch dim ([c, h, w] or [c, l]), which PyTorch's convolution and
    pooling layers accept; the Rust test builds the module of the case named without
    `_unbatched`."""
    r = seeded_randn
    run_case(out, meta, "conv2d_unbatched", nn.Conv2d(3, 4, 3, padding=1), r(3, 6, 6))
    run_case(out, meta, "conv2d_same_unbatched", nn.Conv2d(3, 4, (3, 4), padding="same"),
             r(3, 6, 7))
    run_case(out, meta, "conv1d_unbatched", nn.Conv1d(3, 4, 3, stride=2, padding=1), r(3, 9))
    run_case(out, meta, "conv_transpose2d_unbatched",
             nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), r(3, 4, 4))
    run_case(out, meta, "maxpool2d_ceil_unbatched", nn.MaxPool2d(3, stride=2, ceil_mode=True),
             r(3, 8, 8))
    run_case(out, meta, "maxpool1d_unbatched", nn.MaxPool1d(3, stride=2, padding=1), r(3, 9))
    run_case(out, meta, "avgpool2d_ceil_unbatched", nn.AvgPool2d(3, stride=2, ceil_mode=True),
             r(3, 8, 8))
    run_case(out, meta, "avgpool1d_unbatched", nn.AvgPool1d(2), r(3, 8))
    run_case(out, meta, "adaptive_avg_unbatched", nn.AdaptiveAvgPool2d((2, 3)), r(3, 7, 8))
    run_case(out, meta, "adaptive_max_unbatched", nn.AdaptiveMaxPool2d(3), r(3, 7, 8))
    run_case(out, meta, "adaptive_avg1d_unbatched", nn.AdaptiveAvgPool1d(3), r(3, 8))
    run_case(out, meta, "unfold_unbatched",
             nn.Unfold(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), r(3, 5, 6))
    run_case(out, meta, "fold_unbatched", nn.Fold(output_size=(4, 5), kernel_size=2), r(12, 12))
    run_case(out, meta, "softmax2d_unbatched", nn.Softmax2d(), r(3, 2, 4, scale=3.0))
    run_case(out, meta, "lppool1d_unbatched", nn.LPPool1d(1.5, 3, stride=2),
             r(3, 9).abs() + 0.1)
    run_case(out, meta, "conv_transpose1d_unbatched",
             nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1), r(3, 5))
    run_case(out, meta, "instancenorm2d_affine_unbatched", nn.InstanceNorm2d(3, affine=True),
             r(3, 4, 5))
    run_case(out, meta, "reflection_pad2d_unbatched", nn.ReflectionPad2d((1, 2, 2, 0)),
             r(2, 3, 4))


def make_layers():
    out, meta = {}, {}
    for group in (linear_conv_cases, pool_cases, norm_cases, embedding_cases,
                  activation_cases, piecewise_activation_cases, resampling_cases, shape_cases,
                  unbatched_cases):
        group(out, meta)
    return write("layers.safetensors", out, meta)
