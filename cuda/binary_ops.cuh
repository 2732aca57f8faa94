// The formulas of the elementwise binary ops as X-macro lists, shared by binary.cu (out of
// place) and inplace.cu (in place): X(op, expression) with operands `x`, `y` in the compute type;
// i64 also has `ux`, `uy` (wrapping arithmetic in u64). i64 `div` is separate (zero divisors).
#pragma once
#include "common.cuh"

#define BINARY_FLOAT_OPS(X) \
    X(add, x + y) \
    X(sub, x - y) \
    X(mul, x * y) \
    X(div, x / y) \
    X(pow, m_pow(x, y)) \
    X(maximum, (is_nan(x) || is_nan(y)) ? x + y : m_max(x, y)) \
    X(minimum, (is_nan(x) || is_nan(y)) ? x + y : m_min(x, y))

#define BINARY_I64_OPS(X) \
    X(add, ux + uy) \
    X(sub, ux - uy) \
    X(mul, ux * uy) \
    X(maximum, x > y ? x : y) \
    X(minimum, x < y ? x : y)
