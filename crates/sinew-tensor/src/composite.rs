//! Default bodies of [`Backend`] methods built from the backend's own primitive ops, so a new
//! backend supports them before it has dedicated kernels. They allocate temporaries; backends
//! override the trait methods with fused kernels (the CPU backend does for all of them).

use crate::backend::{Activation, Backend, BackendStorage, BoxedStorage, InplaceOp, MatmulSpec};
use crate::ops::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, Error, Layout, Result, Shape};

/// [`Backend::inplace`] computed out of place with `unary`/`binary`, then `copy_into` the
/// destination view.
pub(crate) fn inplace<B: Backend + ?Sized>(
    b: &B,
    op: InplaceOp,
    dst: &mut dyn BackendStorage,
    dl: &Layout,
    srcs: &[(&dyn BackendStorage, &Layout)],
) -> Result<()> {
    if srcs.len() != op.num_sources() {
        return Err(Error::invalid(
            "inplace",
            format!("expects {} sources, got {}", op.num_sources(), srcs.len()),
        ));
    }
    let dense = Layout::contiguous(dl.shape().clone());
    let out = {
        let d: &dyn BackendStorage = &*dst;
        // `d op s` and `scale * s`, each a fresh contiguous storage.
        let bin = |op, l: &dyn BackendStorage, ll: &Layout, r: &dyn BackendStorage, rl: &Layout| {
            b.binary(op, l, ll, r, rl)
        };
        match op {
            InplaceOp::Binary(op) => bin(op, d, dl, srcs[0].0, srcs[0].1)?,
            InplaceOp::Unary(op) => b.unary(op, d, dl)?,
            InplaceOp::Axpy(alpha) => {
                let t = b.unary(UnaryOp::MulScalar(alpha), srcs[0].0, srcs[0].1)?;
                bin(BinaryOp::Add, d, dl, &*t, &dense)?
            }
            InplaceOp::Addcmul(v) | InplaceOp::Addcdiv(v) => {
                let inner = if matches!(op, InplaceOp::Addcmul(_)) {
                    BinaryOp::Mul
                } else {
                    BinaryOp::Div
                };
                let t = bin(inner, srcs[0].0, srcs[0].1, srcs[1].0, srcs[1].1)?;
                let t = b.unary(UnaryOp::MulScalar(v), &*t, &dense)?;
                bin(BinaryOp::Add, d, dl, &*t, &dense)?
            }
            InplaceOp::Lerp(w) => {
                let diff = bin(BinaryOp::Sub, srcs[0].0, srcs[0].1, d, dl)?;
                let t = b.unary(UnaryOp::MulScalar(w), &*diff, &dense)?;
                bin(BinaryOp::Add, d, dl, &*t, &dense)?
            }
            InplaceOp::Fill(v) => b.full(d.dtype(), dl.elem_count(), v)?,
            InplaceOp::MulAxpy { scale, alpha } => {
                let kept = b.unary(UnaryOp::MulScalar(scale), d, dl)?;
                let t = b.unary(UnaryOp::MulScalar(alpha), srcs[0].0, srcs[0].1)?;
                bin(BinaryOp::Add, &*kept, &dense, &*t, &dense)?
            }
            InplaceOp::MulAddcmul { scale, value } => {
                let kept = b.unary(UnaryOp::MulScalar(scale), d, dl)?;
                let t = bin(BinaryOp::Mul, srcs[0].0, srcs[0].1, srcs[1].0, srcs[1].1)?;
                let t = b.unary(UnaryOp::MulScalar(value), &*t, &dense)?;
                bin(BinaryOp::Add, &*kept, &dense, &*t, &dense)?
            }
            InplaceOp::AddcdivSqrt { value, scale, eps } => {
                let den = b.unary(UnaryOp::Sqrt, srcs[1].0, srcs[1].1)?;
                let den = b.unary(UnaryOp::MulScalar(scale), &*den, &dense)?;
                let den = b.unary(UnaryOp::AddScalar(eps), &*den, &dense)?;
                let t = bin(BinaryOp::Div, srcs[0].0, srcs[0].1, &*den, &dense)?;
                let t = b.unary(UnaryOp::MulScalar(value), &*t, &dense)?;
                bin(BinaryOp::Add, d, dl, &*t, &dense)?
            }
            InplaceOp::MulMaxAbs { scale, eps } => {
                let kept = b.unary(UnaryOp::MulScalar(scale), d, dl)?;
                let t = b.unary(UnaryOp::Abs, srcs[0].0, srcs[0].1)?;
                let t = b.unary(UnaryOp::AddScalar(eps), &*t, &dense)?;
                bin(BinaryOp::Maximum, &*kept, &dense, &*t, &dense)?
            }
        }
    };
    b.copy_into(dst, dl, &*out, &dense)
}

/// [`Backend::softmax`] from `reduce` (max, sum), `binary` (sub, div) and `unary` (exp, log):
/// `exp(x - max) / sum`, or `(x - max) - log(sum)` for log-softmax.
pub(crate) fn softmax<B: Backend + ?Sized>(
    b: &B,
    src: &dyn BackendStorage,
    layout: &Layout,
    dim: usize,
    log: bool,
) -> Result<BoxedStorage> {
    let dense = Layout::contiguous(layout.shape().clone());
    let kept = Layout::contiguous(kept_dims(layout, &[dim]));
    // A reduced (kept-dim) result read at every position of the input.
    let reduced = kept.broadcast_to(layout.shape())?;
    let max = b.reduce(ReduceOp::Max, src, layout, &[dim])?;
    let shifted = b.binary(BinaryOp::Sub, src, layout, &*max, &reduced)?;
    let exp = b.unary(UnaryOp::Exp, &*shifted, &dense)?;
    let sum = b.reduce(ReduceOp::Sum, &*exp, &dense, &[dim])?;
    if log {
        let log_sum = b.unary(UnaryOp::Log, &*sum, &kept)?;
        b.binary(BinaryOp::Sub, &*shifted, &dense, &*log_sum, &reduced)
    } else {
        b.binary(BinaryOp::Div, &*exp, &dense, &*sum, &reduced)
    }
}

/// [`Backend::mean`] from `reduce` (sum) and `unary` (div_scalar by the count). f16/bf16 are
/// summed and divided in f32 (`cast` there and back), so a sum beyond their range still gives
/// a finite mean; f32/f64 sums are rounded to the dtype before the division (one rounding more
/// than the CPU and CUDA kernels).
pub(crate) fn mean<B: Backend + ?Sized>(
    b: &B,
    src: &dyn BackendStorage,
    layout: &Layout,
    dims: &[usize],
) -> Result<BoxedStorage> {
    let dtype = src.dtype();
    if matches!(dtype, DType::F16 | DType::BF16) {
        let wide = b.cast(src, layout, DType::F32)?;
        let wide_layout = Layout::contiguous(layout.shape().clone());
        let wide_mean = mean(b, &*wide, &wide_layout, dims)?;
        let kept = Layout::contiguous(kept_dims(layout, dims));
        return b.cast(&*wide_mean, &kept, dtype);
    }
    // At most the view's element count, which its shape's checks bound.
    let count: usize = dims.iter().map(|&d| layout.dims()[d]).product();
    let sum = b.reduce(ReduceOp::Sum, src, layout, dims)?;
    b.unary(
        UnaryOp::DivScalar(count as f64),
        &*sum,
        &Layout::contiguous(kept_dims(layout, dims)),
    )
}

/// `layout`'s dims with `dims` set to 1.
fn kept_dims(layout: &Layout, dims: &[usize]) -> Vec<usize> {
    let mut kept = layout.dims().to_vec();
    for &d in dims {
        kept[d] = 1;
    }
    kept
}

/// [`Backend::index_select`] as a `gather` whose index is the 1-d `indices` view broadcast
/// along every other dim (bounds are checked by `gather`).
pub(crate) fn index_select<B: Backend + ?Sized>(
    b: &B,
    src: &dyn BackendStorage,
    layout: &Layout,
    indices: &dyn BackendStorage,
    indices_layout: &Layout,
    dim: usize,
) -> Result<BoxedStorage> {
    if indices_layout.dims().len() != 1 {
        return Err(Error::invalid("index_select", "indices must be 1-d"));
    }
    let mut dims = layout.dims().to_vec();
    dims[dim] = indices_layout.dims()[0];
    let mut strides = vec![0; dims.len()];
    strides[dim] = indices_layout.strides()[0];
    let index = Layout::from_parts(Shape::new(dims), strides, indices_layout.offset());
    b.gather(src, layout, indices, &index, dim)
}

/// A matmul with any [`MatmulSpec`] from a plain product: `matmul`, then `cast` to the output
/// dtype, `binary` add of the bias (broadcast over rows) and `unary` ReLU.
pub(crate) fn matmul_unfused<B: Backend + ?Sized>(
    b: &B,
    lhs: &dyn BackendStorage,
    lhs_layout: &Layout,
    rhs: &dyn BackendStorage,
    rhs_layout: &Layout,
    spec: &MatmulSpec<'_>,
) -> Result<BoxedStorage> {
    let dims = spec.dims;
    let mut out = b.matmul(lhs, lhs_layout, rhs, rhs_layout, &MatmulSpec::new(dims))?;
    let operands = out.dtype();
    let rows = dims.batch * dims.m;
    let dense = Layout::contiguous([rows, dims.n]);
    if let Some(dtype) = spec.out_dtype.filter(|&d| d != operands) {
        out = b.cast(&*out, &dense, dtype)?;
    }
    if let Some((bias, bl)) = spec.bias {
        check_bias(out.dtype(), dims.n, bias, bl)?;
        let across_rows = bl.broadcast_to(&Shape::new([rows, dims.n]))?;
        out = b.binary(BinaryOp::Add, &*out, &dense, bias, &across_rows)?;
        if spec.round_to_operands && out.dtype() != operands {
            // Rounded last (ReLU commutes with the rounding); without a bias the product
            // above was already in the operands' dtype.
            let wide = out.dtype();
            out = b.cast(&*out, &dense, operands)?;
            out = b.cast(&*out, &dense, wide)?;
        }
    }
    match spec.activation {
        Some(Activation::Relu) => b.unary(UnaryOp::Relu, &*out, &dense),
        None => Ok(out),
    }
}

/// The bias of a [`MatmulSpec`] is a `[n]` view of the output dtype.
pub(crate) fn check_bias(
    out: DType,
    n: usize,
    bias: &dyn BackendStorage,
    layout: &Layout,
) -> Result<()> {
    if bias.dtype() != out {
        return Err(Error::DTypeMismatch {
            op: "matmul bias",
            lhs: out,
            rhs: bias.dtype(),
        });
    }
    if layout.dims() != [n] {
        return Err(Error::ShapeMismatch {
            op: "matmul bias",
            lhs: Shape::new([n]),
            rhs: layout.shape().clone(),
        });
    }
    Ok(())
}

/// [`Backend::relu_backward`]: `output <= 0 ? 0 : grad` as a comparison with a broadcast zero
/// and a select.
pub(crate) fn relu_backward<B: Backend + ?Sized>(
    b: &B,
    grad: &dyn BackendStorage,
    gl: &Layout,
    output: &dyn BackendStorage,
    ol: &Layout,
) -> Result<BoxedStorage> {
    let zero = b.full(output.dtype(), 1, 0.0)?;
    let zl = Layout::contiguous(Shape::scalar()).broadcast_to(ol.shape())?;
    let inactive = b.compare(CmpOp::Le, output, ol, &*zero, &zl)?;
    let dense = Layout::contiguous(ol.shape().clone());
    let zero = b.full(grad.dtype(), 1, 0.0)?;
    b.where_cond(&*inactive, &dense, &*zero, &zl, grad, gl)
}

/// [`Backend::add_relu`]: the sum, then ReLU over it.
pub(crate) fn add_relu<B: Backend + ?Sized>(
    b: &B,
    lhs: &dyn BackendStorage,
    ll: &Layout,
    rhs: &dyn BackendStorage,
    rl: &Layout,
) -> Result<BoxedStorage> {
    let sum = b.binary(BinaryOp::Add, lhs, ll, rhs, rl)?;
    b.unary(
        UnaryOp::Relu,
        &*sum,
        &Layout::contiguous(ll.shape().clone()),
    )
}

/// [`Backend::amp_unscale`] from the in-place `mul_scalar`, a product by zero, a sum, a
/// comparison, a cast and an in-place maximum.
pub(crate) fn amp_unscale<B: Backend + ?Sized>(
    b: &B,
    grad: &mut dyn BackendStorage,
    gl: &Layout,
    found: (&mut dyn BackendStorage, usize),
    inv_scale: f64,
) -> Result<()> {
    b.inplace(
        InplaceOp::Unary(UnaryOp::MulScalar(inv_scale)),
        grad,
        gl,
        &[],
    )?;
    let zeroed = b.unary(UnaryOp::MulScalar(0.0), &*grad, gl)?;
    let dense = Layout::contiguous(gl.shape().clone());
    let all: Vec<usize> = (0..gl.dims().len()).collect();
    let probe = b.reduce(ReduceOp::Sum, &*zeroed, &dense, &all)?;
    let one = Layout::contiguous(Shape::new([1]));
    let bad = b.compare(CmpOp::Ne, &*probe, &one, &*probe, &one)?;
    let bad = b.cast(&*bad, &one, DType::F32)?;
    let (found, at) = found;
    let slot = Layout::from_parts(Shape::new([1]), vec![1], at);
    b.inplace(
        InplaceOp::Binary(BinaryOp::Maximum),
        found,
        &slot,
        &[(&*bad, &one)],
    )
}
