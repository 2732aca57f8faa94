#!/usr/bin/env python3
"""Generates `cases.rs`, the PyTorch reference fixture of `tests/suite/pytorch_grads.rs`.

For every differentiable op of sinew-tensor's op table (one or more cases each) this builds
small deterministic f64 inputs, runs the op in PyTorch with `requires_grad`, backpropagates
`(out * w).sum()` with the fixed weights `w[i] = 0.5 + (i % 61) / 64` (exact in f64, so both
sides build the very same `w`), and writes the inputs, the forward output and every input
gradient as plain Rust data. `cargo test` only reads the committed `cases.rs`; Python is needed
only to regenerate it:

    /tmp/torchvenv/bin/python crates/sinew-autograd/tests/pytorch/generate.py

(any Python with `torch` and `numpy` works: `python3 -m venv /tmp/torchvenv &&
/tmp/torchvenv/bin/pip install torch numpy`; the output path does not depend on the working
directory). The Sinew side of every
case (the `Var` call with the same parameters) is in `RUNNERS` of `tests/suite/pytorch_grads.rs`,
keyed by the case name; a case here without a runner there, or the reverse, fails that test.

Where Sinew's convention differs from PyTorch's spelling, the case mirrors Sinew's and says so:
`pad` lists (before, after) outermost dim first (F.pad lists the last dim first), `max`/`min`
over dims are `amax`/`amin`, `norm` is `torch.linalg.vector_norm`, `step(at_zero)` is
`torch.heaviside`, `rsub_scalar(s)` is `s - x`, `rdiv_scalar(s)` is `s / x`, and `clamp`
passes the gradient at its bounds (see `clamp_passing_bounds`).
"""

import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
F64 = torch.float64
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.rs")

CASES = []


def vals(shape, lo, hi):
    """`numel` evenly spaced values in [lo, hi], rounded to multiples of 1/128 (short exact
    literals) and deterministically shuffled (ordered by the fractional part of i times the
    golden ratio), so extremes do not sit at the ends; every value is distinct."""
    n = math.prod(shape)
    base = (torch.linspace(lo, hi, n, dtype=F64) * 128).round() / 128
    assert len(set(base.tolist())) == n, "values collide after rounding"
    order = sorted(range(n), key=lambda i: (i * 0.6180339887498949) % 1.0)
    return base[order].reshape(shape).clone()


def away(t, *kinks, gap=1e-2):
    """Asserts that no value of `t` is within `gap` of a kink (the derivative is ambiguous)."""
    for k in kinks:
        assert (t - k).abs().min().item() > gap, f"value too close to kink {k}"
    return t


def tensor(data, shape=None):
    t = torch.tensor(data, dtype=F64)
    return t.reshape(shape) if shape is not None else t


def ints(data):
    return torch.tensor(data, dtype=torch.int64)


def weights(n):
    return torch.tensor([0.5 + (i % 61) / 64 for i in range(n)], dtype=F64)


def case(name, op, fn, inputs, ints=(), masks=()):
    """Registers a case: `fn(*inputs, *ints, *masks)` returns the output, or (output, indices)."""
    CASES.append((name, op, fn, list(inputs), list(ints), list(masks)))


def rejoin(pieces, dim):
    """Pieces scaled by 1, 2, 3, ... and joined again, so each piece's gradient is distinct."""
    return torch.cat([p * (i + 1) for i, p in enumerate(pieces)], dim)


# ---------------------------------------------------------------- unary (elementwise, one input)
S = (2, 3)
case("neg", "neg", torch.neg, [vals(S, -1.5, 1.5)])
case("abs", "abs", torch.abs, [away(vals((3, 4), -1.25, 1.1), 0)])
# Kink: |x|' = sign(x) = 0 at 0 (PyTorch's convention, and Sinew's).
case("abs/at_zero", "abs", torch.abs, [tensor([-1.5, 0.0, 2.0])])
case("exp", "exp", torch.exp, [vals(S, -2, 1.5)])
# A transposed (non-contiguous) view fed to the op; the leaf is the untransposed tensor.
case("exp/transposed", "exp", lambda x: x.t().exp(), [vals((3, 2), -2, 1.5)])
case("log", "log", torch.log, [vals(S, 0.2, 3)])
case("log1p", "log1p", torch.log1p, [vals(S, -0.5, 2)])
case("sqrt", "sqrt", torch.sqrt, [vals(S, 0.2, 3)])
case("rsqrt", "rsqrt", torch.rsqrt, [vals(S, 0.2, 3)])
case("sin", "sin", torch.sin, [vals(S, -3, 3)])
case("cos", "cos", torch.cos, [vals(S, -3, 3)])
case("tanh", "tanh", torch.tanh, [vals(S, -2.5, 2.5)])
case("sigmoid", "sigmoid", torch.sigmoid, [vals(S, -3, 3)])
case("relu", "relu", torch.relu, [away(vals((3, 4), -1.25, 1.1), 0)])
# Kinks: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha (PyTorch's conventions).
case("relu/at_zero", "relu", torch.relu, [tensor([-1.0, 0.0, 0.5])])
case("leaky_relu", "leaky_relu", lambda x: F.leaky_relu(x, 0.1), [away(vals((3, 4), -1.25, 1.1), 0)])
case("leaky_relu/at_zero", "leaky_relu", lambda x: F.leaky_relu(x, 0.1), [tensor([-1.0, 0.0, 0.5])])
case("elu", "elu", lambda x: F.elu(x, 1.3), [away(vals((3, 4), -1.25, 1.1), 0)])
case("elu/at_zero", "elu", lambda x: F.elu(x, 1.3), [tensor([-1.0, 0.0, 0.5])])
# Exact (erf) GELU.
case("gelu", "gelu", F.gelu, [vals((3, 4), -3, 3)])
case("erf", "erf", torch.erf, [vals(S, -2, 2)])
# beta 1.5, threshold 2: values with beta * x > 2 take the linear branch.
case("softplus", "softplus", lambda x: F.softplus(x, 1.5, 2.0), [away(vals((3, 4), -3, 3), 2 / 1.5)])
case("softplus/defaults", "softplus", lambda x: F.softplus(x, 1.0, 20.0), [vals(S, -3, 3)])
# step(at_zero) is torch.heaviside(x, at_zero). PyTorch has no derivative for heaviside; Sinew's
# is 0 everywhere, which is what `0 * x` contributes here. The input holds an exact 0.
case("step", "step", lambda x: torch.heaviside(x.detach(), tensor(0.5)) + 0 * x,
     [tensor([-1.5, 0.0, 0.25, 2.0, -0.1, 3.0], (2, 3))])
case("sign", "sign", torch.sign, [tensor([-1.5, 0.0, 0.25, 2.0, -0.1, 3.0], (2, 3))])
case("clamp", "clamp", lambda x: torch.clamp(x, -0.5, 0.7), [away(vals((3, 4), -1.25, 1.1), -0.5, 0.7)])
# At the bounds Sinew passes the gradient (min <= x <= max): PyTorch's rule from 2018 (PR 7049)
# until its recent switch to the minimum-norm subgradient 0 (issue 184572; PyTorch 2.15 gives 0
# for scalar bounds). The case spells out Sinew's documented convention rather than calling
# torch.clamp, so it does not depend on the PyTorch version.
def clamp_passing_bounds(x, lo, hi):
    return torch.where((x >= lo) & (x <= hi), x, torch.clamp(x, lo, hi).detach())


case("clamp/at_bounds", "clamp", lambda x: clamp_passing_bounds(x, -0.5, 0.7), [tensor([-0.5, 0.7, 0.0, -1.0, 1.0])])
case("powf", "powf", lambda x: torch.pow(x, 2.5), [vals(S, 0.2, 3)])
# An integer exponent on negative bases.
case("powf/cube", "powf", lambda x: torch.pow(x, 3.0), [vals(S, -2, 1.5)])
case("powf/negative", "powf", lambda x: torch.pow(x, -1.5), [vals(S, 0.2, 3)])
case("recip", "recip", torch.reciprocal, [away(vals(S, -2, 2.5), 0, gap=0.1)])
case("square", "square", torch.square, [vals(S, -2, 2)])
case("add_scalar", "add_scalar", lambda x: x + 0.7, [vals(S, -2, 2)])
case("mul_scalar", "mul_scalar", lambda x: x * -1.3, [vals(S, -2, 2)])
case("div_scalar", "div_scalar", lambda x: x / 2.5, [vals(S, -2, 2)])
# rsub_scalar(s) is s - x; rdiv_scalar(s) is s / x.
case("rsub_scalar", "rsub_scalar", lambda x: 1.5 - x, [vals(S, -2, 2)])
case("rdiv_scalar", "rdiv_scalar", lambda x: 2.0 / x, [away(vals(S, -2, 2.5), 0, gap=0.1)])

# ---------------------------------------------------------------- binary (broadcasting)
A, B = (2, 1, 3), (4, 1)  # broadcast to (2, 4, 3): both inputs' gradients are summed back
case("add", "add", torch.add, [vals(A, -1, 1), vals(B, -2, 2)])
case("add/scalar_rhs", "add", torch.add, [vals(S, -1, 1), tensor(0.75)])
case("sub", "sub", torch.sub, [vals(A, -1, 1), vals(B, -2, 2)])
case("mul", "mul", torch.mul, [vals(A, -1, 1), vals(B, -2, 2)])
case("mul/transposed", "mul", lambda a, b: a.t() * b, [vals((3, 2), -1, 1), vals((2, 3), -2, 2)])
case("div", "div", torch.div, [vals(A, -1, 1), away(vals(B, -2, 2), 0, gap=0.1)])
case("pow", "pow", torch.pow, [vals(S, 0.5, 2.5), vals((3,), -1.5, 2)])
case("pow/broadcast", "pow", torch.pow, [vals((3, 1), 0.5, 2.5), vals((2, 1, 4), -1.5, 2)])
case("maximum", "maximum", torch.maximum, [vals(A, -1, 1), vals(B, -1.1, 0.9)])
case("minimum", "minimum", torch.minimum, [vals(A, -1, 1), vals(B, -1.1, 0.9)])
# Ties: PyTorch splits the gradient in half between the inputs.
TA, TB = tensor([1.0, 2.0, -0.5, 3.0]), tensor([1.0, 1.5, -0.5, 4.0])
case("maximum/ties", "maximum", torch.maximum, [TA, TB])
case("minimum/ties", "minimum", torch.minimum, [TA, TB])
# add_relu: a residual connection's sum and ReLU; half the sums are negative, none near the kink.
RA, RB = vals(A, -1, 1), vals(B, -2, 2)
away(RA + RB, 0)
case("add_relu", "add_relu", lambda a, b: torch.relu(a + b), [RA, RB])

# ---------------------------------------------------------------- select
COND = torch.tensor([True, False, False, True, True, False, True, True]).reshape(2, 4, 1)
case("where_cond", "where_cond", lambda a, b, c: torch.where(c, a, b),
     [vals((4, 3), -1, 1), vals((2, 1, 3), -2, 2)], masks=[COND])
MASK = torch.tensor([[True, False, False, True], [False, False, True, False], [True, True, False, False]])
case("masked_fill", "masked_fill", lambda x, m: x.masked_fill(m, 1.5), [vals((3, 4), -1, 1)], masks=[MASK])
case("masked_fill/broadcast_mask", "masked_fill", lambda x, m: x.masked_fill(m, -2.0),
     [vals((3, 4), -1, 1)], masks=[torch.tensor([False, True, True, False])])

# ---------------------------------------------------------------- reductions
R = (2, 3, 4)
case("sum", "sum", lambda x: x.sum((0, 2)), [vals(R, -1, 1)])
case("sum/all", "sum", lambda x: x.sum(), [vals(R, -1, 1)])
case("sum/keepdim", "sum", lambda x: x.sum(-2, keepdim=True), [vals(R, -1, 1)])
case("mean", "mean", lambda x: x.mean(1, keepdim=True), [vals(R, -1, 1)])
case("mean/all", "mean", lambda x: x.mean(), [vals(R, -1, 1)])
case("prod", "prod", lambda x: torch.prod(x, 2), [vals(R, 0.5, 1.5)])
case("prod/negative", "prod", lambda x: torch.prod(x, 0, keepdim=True), [away(vals((3, 4), -1.5, 1.2), 0)])
# Rows with no zero, one zero (it gets the product of the others) and two zeros (all 0).
case("prod/zeros", "prod", lambda x: torch.prod(x, 1),
     [tensor([[0.5, 2.0, -1.5, 3.0], [1.5, 0.0, 2.0, -0.5], [0.0, 1.5, 0.0, 2.0]])])
# Sinew's max/min over dims are PyTorch's amax/amin (ties share the gradient evenly).
case("max", "max", lambda x: torch.amax(x, (0, 2)), [vals(R, -1, 1)])
case("max/keepdim", "max", lambda x: torch.amax(x, 1, keepdim=True), [vals(R, -1, 1)])
case("max/all", "max", lambda x: torch.amax(x), [vals(R, -1, 1)])
case("max/ties", "max", lambda x: torch.amax(x, 1),
     [tensor([[1.0, 3.0, 3.0, 2.0], [0.5, 0.5, 0.5, -1.0], [2.0, 1.0, 0.0, 1.5]])])
case("min", "min", lambda x: torch.amin(x, 1), [vals(R, -1, 1)])
case("min/ties", "min", lambda x: torch.amin(x, 0, keepdim=True),
     [tensor([[1.0, -3.0, 3.0, 2.0], [1.0, -3.0, 0.5, -1.0], [2.0, 1.0, 0.5, -1.0]])])
# Var::max_dim / min_dim are torch.max(x, dim) / torch.min(x, dim): values and indices, the
# gradient going to the index only.
case("max/max_dim", "max", lambda x: torch.max(x, 1), [vals((3, 4), -1, 1)])
case("min/min_dim", "min", lambda x: torch.min(x, 0, keepdim=True), [vals((3, 4), -1, 1)])
# var(dims, correction, keepdim) / std(...) are torch.var / torch.std with `correction`.
case("var", "var", lambda x: torch.var(x, 1, correction=1), [vals(R, -1, 1)])
case("var/all", "var", lambda x: torch.var(x, None, correction=0, keepdim=True), [vals(R, -1, 1)])
case("std", "std", lambda x: torch.std(x, (0, 2), correction=0, keepdim=True), [vals(R, -1, 1)])
case("std/unbiased", "std", lambda x: torch.std(x, -1, correction=1), [vals(R, -1, 1)])
case("logsumexp", "logsumexp", lambda x: torch.logsumexp(x, 1), [vals(R, -2, 2)])
case("logsumexp/keepdim", "logsumexp", lambda x: torch.logsumexp(x, (0, 2), keepdim=True), [vals(R, -2, 2)])
# Large values: exp would overflow without the max shift.
case("logsumexp/large", "logsumexp", lambda x: torch.logsumexp(x, -1), [vals((2, 3), 700, 1000)])
# norm(p, dims, keepdim) is torch.linalg.vector_norm(x, p, dims, keepdim).
case("norm", "norm", lambda x: torch.linalg.vector_norm(x, 3.0, 1), [away(vals(R, -1, 1), 0)])
case("norm/l2_all", "norm", lambda x: torch.linalg.vector_norm(x, 2.0), [vals(R, -1, 1)])
case("norm/l1", "norm", lambda x: torch.linalg.vector_norm(x, 1.0, 0, keepdim=True), [away(vals(R, -1, 1), 0)])
case("norm/inf", "norm", lambda x: torch.linalg.vector_norm(x, math.inf, -1), [vals(R, -1, 1.1)])
case("norm/half", "norm", lambda x: torch.linalg.vector_norm(x, 0.5, (0, 2)), [away(vals(R, -1, 1), 0)])
# Zero vectors (and constant rows for std): PyTorch's gradient there is the subgradient 0.
ZROW = tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
case("norm/zero_row", "norm", lambda x: torch.linalg.vector_norm(x, 2.0, 1), [ZROW])
case("norm/p3_zero_row", "norm", lambda x: torch.linalg.vector_norm(x, 3.0, 1), [ZROW])
case("std/constant_row", "std", lambda x: torch.std(x, 1, correction=0), [ZROW + 1])
# p < 1: a zero element (infinite slope of |x|^p) gets 0 as well.
case("norm/half_zeros", "norm", lambda x: torch.linalg.vector_norm(x, 0.5, 1),
     [tensor([[0.0, 1.0, -2.0], [0.0, 0.0, 0.0]])])

# ---------------------------------------------------------------- softmax
case("softmax", "softmax", lambda x: torch.softmax(x, 1), [vals(R, -2, 2)])
case("softmax/last", "softmax", lambda x: torch.softmax(x, -1), [vals(R, -2, 2)])
case("log_softmax", "log_softmax", lambda x: torch.log_softmax(x, 0), [vals(R, -2, 2)])
case("log_softmax/last", "log_softmax", lambda x: torch.log_softmax(x, -1), [vals(R, -2, 2)])

# ---------------------------------------------------------------- matmul (torch.matmul rules)
case("matmul", "matmul", torch.matmul, [vals((2, 3), -1, 1), vals((3, 4), -1, 1)])
case("matmul/batch_broadcast", "matmul", torch.matmul, [vals((2, 1, 3, 4), -1, 1), vals((3, 4, 2), -1, 1)])
case("matmul/vec_lhs", "matmul", torch.matmul, [vals((3,), -1, 1), vals((2, 3, 4), -1, 1)])
case("matmul/vec_rhs", "matmul", torch.matmul, [vals((2, 3, 4), -1, 1), vals((4,), -1, 1)])
case("matmul/dot", "matmul", torch.matmul, [vals((4,), -1, 1), vals((4,), -1, 1)])
case("matmul/transposed", "matmul", lambda a, b: a.transpose(-2, -1) @ b,
     [vals((2, 4, 3), -1, 1), vals((4, 2), -1, 1)])

# matmul_with: the product with a fused bias (+ ReLU) epilogue, i.e. addmm and linear.
case("matmul_with", "matmul_with", lambda a, b, c: torch.addmm(c, a, b),
     [vals((3, 4), -1, 1), vals((4, 5), -1, 1), vals((5,), -1, 1)])
case("matmul_with/relu", "matmul_with", lambda a, b, c: torch.relu(torch.addmm(c, a, b)),
     [vals((3, 4), -1, 1), vals((4, 5), -0.5, 1), vals((5,), -0.3, 0.2)])
case("matmul_with/linear", "matmul_with", lambda x, w, b: F.linear(x, w, b),
     [vals((2, 3, 4), -1, 1), vals((5, 4), -1, 1), vals((5,), -1, 1)])

# ---------------------------------------------------------------- views
case("reshape", "reshape", lambda x: x.reshape(4, 6), [vals(R, -1, 1)])
case("reshape/transposed", "reshape", lambda x: x.t().reshape(12), [vals((3, 4), -1, 1)])
case("permute", "permute", lambda x: x.permute(2, 0, 1), [vals(R, -1, 1)])
case("transpose", "transpose", lambda x: x.transpose(0, 2), [vals(R, -1, 1)])
case("transpose/negative", "transpose", lambda x: x.transpose(-1, -2), [vals(R, -1, 1)])
case("narrow", "narrow", lambda x: x.narrow(1, 1, 2), [vals(R, -1, 1)])
# slice(dim, start, end, step) is x[..., start:end:step].
case("slice", "slice", lambda x: x[..., 1:4:2], [vals((2, 3, 5), -1, 1)])
case("slice/dim0", "slice", lambda x: x[0:3:2], [vals((4, 3), -1, 1)])
case("squeeze", "squeeze", lambda x: x.squeeze(1), [vals((2, 1, 3), -1, 1)])
case("unsqueeze", "unsqueeze", lambda x: x.unsqueeze(-1), [vals(S, -1, 1)])
case("unsqueeze/front", "unsqueeze", lambda x: x.unsqueeze(0), [vals(S, -1, 1)])
case("broadcast_to", "broadcast_to", lambda x: x.broadcast_to(2, 3, 4), [vals((3, 1), -1, 1)])
case("flatten", "flatten", lambda x: x.flatten(1, 2), [vals(R, -1, 1)])
case("flatten/all", "flatten", lambda x: x.flatten(0, -1), [vals(R, -1, 1)])
case("contiguous", "contiguous", lambda x: x.t().contiguous(), [vals((3, 4), -1, 1)])

# ---------------------------------------------------------------- joining, splitting, indexing
case("cat", "cat", lambda a, b, c: torch.cat([a, b, c], 1),
     [vals((2, 1, 3), -1, 1), vals((2, 2, 3), -2, 0), vals((2, 3, 3), 0, 2)])
case("cat/last", "cat", lambda a, b: torch.cat([a, b], -1), [vals((2, 3), -1, 1), vals((2, 1), -2, 0)])
case("stack", "stack", lambda a, b, c: torch.stack([a, b, c], 1),
     [vals(S, -1, 1), vals(S, -2, 0), vals(S, 0, 2)])
case("stack/front", "stack", lambda a, b: torch.stack([a, b], 0), [vals(S, -1, 1), vals(S, -2, 0)])
# split / chunk pieces are rejoined with weights 1, 2, 3, ... (see `rejoin`).
case("split", "split", lambda x: rejoin(x.split(2, 0), 0), [vals((5, 3), -1, 1)])
case("split/last", "split", lambda x: rejoin(x.split(3, -1), -1), [vals((2, 7), -1, 1)])
case("chunk", "chunk", lambda x: rejoin(x.chunk(2, -1), -1), [vals((3, 5), -1, 1)])
case("chunk/uneven", "chunk", lambda x: rejoin(x.chunk(3, 0), 0), [vals((4, 2), -1, 1)])
# Repeated indices: their gradients accumulate.
case("index_select", "index_select", lambda x, i: x.index_select(1, i), [vals((3, 4), -1, 1)],
     ints=[ints([2, 0, 2, 3])])
case("index_select/dim0", "index_select", lambda x, i: x.index_select(0, i), [vals((3, 4), -1, 1)],
     ints=[ints([1, 1, 0])])
case("gather", "gather", lambda x, i: x.gather(1, i), [vals((3, 4), -1, 1)],
     ints=[ints([[3, 3], [0, 2], [1, 0]])])
case("gather/dim0", "gather", lambda x, i: x.gather(0, i), [vals((3, 4), -1, 1)],
     ints=[ints([[2, 0, 1, 1], [0, 0, 2, 1]])])
# scatter with duplicate indices is undefined in PyTorch: indices are distinct along `dim`.
# (Sinew also accepts `values` larger than the index, reading only the index's extent; PyTorch's
# backward rejects that shape, so it has no case here.)
case("scatter", "scatter", lambda x, v, i: torch.scatter(x, 1, i, v), [vals((3, 4), -1, 1), vals((3, 2), 2, 3)],
     ints=[ints([[0, 2], [3, 1], [1, 0]])])
case("scatter/dim0", "scatter", lambda x, v, i: torch.scatter(x, 0, i, v), [vals((3, 4), -1, 1), vals((2, 4), 2, 3)],
     ints=[ints([[2, 0, 1, 0], [0, 1, 2, 2]])])
# scatter_add accumulates duplicates (well defined).
case("scatter_add", "scatter_add", lambda x, v, i: torch.scatter_add(x, 1, i, v),
     [vals((3, 4), -1, 1), vals((3, 3), 2, 3)], ints=[ints([[0, 2, 0], [3, 1, 1], [1, 1, 1]])])
case("scatter_add/dim0", "scatter_add", lambda x, v, i: torch.scatter_add(x, 0, i, v),
     [vals((3, 4), -1, 1), vals((2, 4), 2, 3)], ints=[ints([[2, 0, 1, 0], [2, 1, 1, 0]])])
# Sinew's pad takes (before, after) for the last dims outermost first; F.pad lists the last dim
# first. Sinew [(1, 2)] = F.pad(x, (1, 2)); Sinew [(1, 0), (2, 1)] = F.pad(x, (2, 1, 1, 0)).
case("pad", "pad", lambda x: F.pad(x, (1, 2), value=0.5), [vals(R, -1, 1)])
case("pad/two_dims", "pad", lambda x: F.pad(x, (2, 1, 1, 0), value=-1.0), [vals(R, -1, 1)])
case("pad/reflect", "pad", lambda x: F.pad(x, (2, 1), mode="reflect"), [vals((2, 3, 5), -1, 1)])
case("pad/reflect_two_dims", "pad", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [vals((2, 4, 5), -1, 1)])

# ---------------------------------------------------------------- convolution and pooling
# unfold2d / fold2d with kernel (2, 3), stride (2, 1), padding (1, 0), dilation (1, 2) on
# [2, 2, 5, 6] images: F.unfold / F.fold, columns [n, c*kh*kw, L].
UF = dict(kernel_size=(2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1))
case("unfold2d", "unfold2d", lambda x: F.unfold(x, **UF), [vals((2, 2, 5, 6), -1, 1)])
case("unfold2d/square", "unfold2d", lambda x: F.unfold(x, 3, padding=1, stride=2), [vals((1, 3, 5, 5), -1, 1)])
case("fold2d", "fold2d", lambda c: F.fold(c, (5, 6), **UF), [vals((2, 12, 6), -1, 1)])
case("fold2d/square", "fold2d", lambda c: F.fold(c, (5, 5), 3, padding=1, stride=2), [vals((1, 27, 9), -1, 1)])
case("conv2d", "conv2d", lambda x, w, b: F.conv2d(x, w, b),
     [vals((2, 3, 5, 5), -1, 1), vals((4, 3, 3, 3), -0.5, 0.5), vals((4,), -1, 1)])
case("conv2d/strided_grouped", "conv2d",
     lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2),
     [vals((2, 4, 5, 5), -1, 1), vals((6, 2, 3, 3), -0.5, 0.5), vals((6,), -1, 1)])
case("conv2d/no_bias", "conv2d", lambda x, w: F.conv2d(x, w, padding=1),
     [vals((1, 2, 4, 3), -1, 1), vals((3, 2, 2, 2), -0.5, 0.5)])
# conv2d_then(.., Relu): the ReLU in the convolution's epilogue (no output within 0.05 of 0).
CX, CW, CB = vals((2, 3, 5, 5), -1, 1), vals((4, 3, 3, 3), -0.5, 0.5), vals((4,), -1, 1)
away(F.conv2d(CX, CW, CB, stride=(1, 2), padding=1), 0)
case("conv2d/relu", "conv2d", lambda x, w, b: torch.relu(F.conv2d(x, w, b, stride=(1, 2), padding=1)),
     [CX, CW, CB])
case("conv1d", "conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
     [vals((2, 3, 7), -1, 1), vals((4, 3, 3), -0.5, 0.5), vals((4,), -1, 1)])
case("conv1d/dilated_grouped", "conv1d", lambda x, w: F.conv1d(x, w, dilation=2, groups=2),
     [vals((2, 4, 8), -1, 1), vals((2, 2, 3), -0.5, 0.5)])
# Pooling returns PyTorch's flat h*w indices too; they are compared as well.
case("max_pool2d", "max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True),
     [vals((2, 2, 5, 5), -1, 1)])
case("max_pool2d/rect_dilated", "max_pool2d",
     lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 0), dilation=(2, 1), return_indices=True),
     [vals((1, 2, 5, 6), -1, 1)])
case("max_pool1d", "max_pool1d", lambda x: F.max_pool1d(x, 3, 2, 1, return_indices=True),
     [vals((2, 2, 7), -1, 1)])
case("max_pool1d/default_stride", "max_pool1d", lambda x: F.max_pool1d(x, 2, return_indices=True),
     [vals((1, 3, 6), -1, 1)])
case("avg_pool2d", "avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), [vals((2, 2, 5, 5), -1, 1)])
case("avg_pool2d/exclude_pad", "avg_pool2d", lambda x: F.avg_pool2d(x, (2, 3), (1, 2), (1, 1), count_include_pad=False),
     [vals((1, 2, 4, 6), -1, 1)])
case("avg_pool1d", "avg_pool1d", lambda x: F.avg_pool1d(x, 3, 2, 1), [vals((2, 2, 7), -1, 1)])

# ---------------------------------------------------------------- cast
# f64 -> f32 -> f64: the forward rounds to f32, and so does the gradient on its way back.
case("to_dtype", "to_dtype", lambda x: x.to(torch.float32).to(F64), [vals(S, -1, 1)])


# ================================================================ emit
def lit(x):
    x = float(x)
    assert math.isfinite(x), x
    return repr(x)


def dims(t):
    return "&[" + ", ".join(str(d) for d in t.shape) + "]"


def f64s(t):
    return "T { dims: " + dims(t) + ", data: &[" + ", ".join(lit(v) for v in t.flatten().tolist()) + "] }"


def i64s(t):
    return "I { dims: " + dims(t) + ", data: &[" + ", ".join(str(v) for v in t.flatten().tolist()) + "] }"


def bools(t):
    data = ", ".join("true" if v else "false" for v in t.flatten().tolist())
    return "B { dims: " + dims(t) + ", data: &[" + data + "] }"


def run(name, fn, inputs, int_args, masks):
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    result = fn(*leaves, *int_args, *masks)
    out, indices = (result if isinstance(result, tuple) else (result, None))
    out = out.to(F64)
    w = weights(out.numel()).reshape(out.shape)
    (out * w).sum().backward()
    grads = []
    for leaf in leaves:
        assert leaf.grad is not None, f"{name}: an input gets no gradient"
        grads.append(leaf.grad)
    return out.detach(), grads, indices


def main():
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names), "duplicate case names"
    lines = [
        "// @generated by crates/sinew-autograd/tests/pytorch/generate.py: do not edit by hand.",
        "// Regenerate with PyTorch installed (any CPU build):",
        "//     /tmp/torchvenv/bin/python crates/sinew-autograd/tests/pytorch/generate.py",
        f"// PyTorch {torch.__version__.split('+')[0]}.",
        "",
        "//! PyTorch reference values, one `Case` per op call: f64 inputs, the forward output and",
        "//! the gradient of `(out * w).sum()` for each input, `w[i] = 0.5 + (i % 61) / 64`.",
        "",
        "/// An f64 tensor: dims and row-major data.",
        "pub struct T { pub dims: &'static [usize], pub data: &'static [f64] }",
        "/// An i64 tensor (indices).",
        "pub struct I { pub dims: &'static [usize], pub data: &'static [i64] }",
        "/// A Bool tensor (conditions and masks).",
        "pub struct B { pub dims: &'static [usize], pub data: &'static [bool] }",
        "",
        "/// One PyTorch call and its results.",
        "pub struct Case {",
        "    /// Unique name; `RUNNERS` in pytorch_grads.rs holds the matching Sinew call.",
        "    pub name: &'static str,",
        "    /// The op-table entry it covers.",
        "    pub op: &'static str,",
        "    /// Float inputs, all requiring a gradient.",
        "    pub inputs: &'static [T],",
        "    /// Index arguments.",
        "    pub ints: &'static [I],",
        "    /// Bool arguments.",
        "    pub masks: &'static [B],",
        "    /// Forward output.",
        "    pub output: T,",
        "    /// Indices returned with the output (max pooling, max/min along a dim).",
        "    pub indices: Option<I>,",
        "    /// Gradient of each input.",
        "    pub grads: &'static [T],",
        "}",
        "",
        "/// Every case, in op-table order.",
        "pub const CASES: &[Case] = &[",
    ]
    for name, op, fn, inputs, int_args, masks in CASES:
        out, grads, indices = run(name, fn, inputs, int_args, masks)
        lines.append(f"Case {{ name: {name!r}, op: {op!r},".replace("'", '"'))
        lines.append("  inputs: &[" + ", ".join(f64s(x) for x in inputs) + "],")
        lines.append("  ints: &[" + ", ".join(i64s(i) for i in int_args) + "],")
        lines.append("  masks: &[" + ", ".join(bools(m) for m in masks) + "],")
        lines.append("  output: " + f64s(out) + ",")
        lines.append("  indices: " + (f"Some({i64s(indices)})" if indices is not None else "None") + ",")
        lines.append("  grads: &[" + ", ".join(f64s(g) for g in grads) + "],")
        lines.append("},")
    lines.append("];")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} cases for {len(set(c[1] for c in CASES))} ops to {OUT}")


if __name__ == "__main__":
    main()
