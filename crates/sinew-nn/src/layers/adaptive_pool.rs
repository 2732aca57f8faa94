//! Adaptive pooling layers (`AdaptiveAvgPool1d/2d`, `AdaptiveMaxPool1d/2d`) and their
//! functional forms: PyTorch's windows, axis by axis; one reshape and reduction when the windows are equal, one gather when each is a
//! single value, a narrow and reduction per cell otherwise. Average pooling keeps an f16/bf16
//! input's dtype under autocast, as PyTorch's does (`pooled_mean`).

use sinew_tensor::{Error, Result, Tensor, autocast_off};

use super::unbatched::batch_of_one;
use crate::{Module, summary};

#[derive(Clone, Copy)]
enum Adaptive {
    Avg,
    Max,
}

/// Pools axis `dim` of `x` into `out` cells: cell `i` covers `[floor(i*len/out),
/// ceil((i+1)*len/out))`, PyTorch's adaptive windows.
fn adaptive_axis(x: &Tensor, dim: usize, out: usize, kind: Adaptive) -> Result<Tensor> {
    let len = x.dims()[dim];
    if out == 0 || len == 0 {
        return Err(Error::invalid(
            "adaptive pooling",
            format!("cannot pool {len} values into {out} cells"),
        ));
    }
    if len == out {
        return Ok(x.clone());
    }
    let d = dim as isize;
    if len.is_multiple_of(out) {
        // Equal windows of len/out side by side: one reshape and one reduction.
        let mut dims = x.dims().to_vec();
        dims.splice(dim..=dim, [out, len / out]);
        let split = x.reshape(dims)?;
        return match kind {
            Adaptive::Avg => pooled_mean(&split, &[d + 1], false),
            Adaptive::Max => split.max(&[d + 1], false),
        };
    }
    if out.is_multiple_of(len) {
        // Every window is one value (upsampling): one gather along the axis.
        let starts: Vec<i64> = (0..out).map(|i| (i * len / out) as i64).collect();
        let index = Tensor::from_vec(starts, [out])?.to_device(x.device())?;
        return x.index_select(d, &index);
    }
    adaptive_cells(x, dim, out, kind)
}

/// [`adaptive_axis`] cell by cell: a narrow and a reduction per cell, then a concatenation.
fn adaptive_cells(x: &Tensor, dim: usize, out: usize, kind: Adaptive) -> Result<Tensor> {
    let (len, d) = (x.dims()[dim], dim as isize);
    let cells = (0..out)
        .map(|i| {
            let start = i * len / out;
            let end = ((i + 1) * len).div_ceil(out);
            let part = x.narrow(d, start, end - start)?;
            match kind {
                Adaptive::Avg => pooled_mean(&part, &[d], true),
                Adaptive::Max => part.max(&[d], true),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&cells, d)
}

/// Adaptive pooling of `[n, c, h, w]` or of one unbatched sample `[c, h, w]`.
fn adaptive2d(x: &Tensor, out: (usize, usize), kind: Adaptive) -> Result<Tensor> {
    batch_of_one(x, 4, |x| adaptive2d_batch(x, out, kind))
}

fn adaptive2d_batch(x: &Tensor, out: (usize, usize), kind: Adaptive) -> Result<Tensor> {
    if x.rank() != 4 {
        return Err(Error::invalid(
            "adaptive pooling",
            format!("expects [n, c, h, w], got {}", x.shape()),
        ));
    }
    adaptive_axis(&adaptive_axis(x, 2, out.0, kind)?, 3, out.1, kind)
}

/// Adaptive pooling of `[n, c, l]` or of one unbatched sample `[c, l]`.
fn adaptive1d(x: &Tensor, out: usize, kind: Adaptive) -> Result<Tensor> {
    batch_of_one(x, 3, |x| {
        if x.rank() != 3 {
            return Err(Error::invalid(
                "adaptive pooling",
                format!("expects [n, c, l], got {}", x.shape()),
            ));
        }
        adaptive_axis(x, 2, out, kind)
    })
}

/// PyTorch's `F.adaptive_avg_pool1d`: `[n, c, l]` (or `[c, l]`) averaged into `output_size`
/// cells along `l`, cell `i` over `[floor(i l / out), ceil((i + 1) l / out))`.
pub fn adaptive_avg_pool1d(x: &Tensor, output_size: usize) -> Result<Tensor> {
    adaptive1d(x, output_size, Adaptive::Avg)
}

/// PyTorch's `F.adaptive_max_pool1d` (the values): [`adaptive_avg_pool1d`]'s cells, maxima.
pub fn adaptive_max_pool1d(x: &Tensor, output_size: usize) -> Result<Tensor> {
    adaptive1d(x, output_size, Adaptive::Max)
}

/// PyTorch's `F.adaptive_avg_pool2d`: `[n, c, h, w]` (or `[c, h, w]`) averaged into
/// `(h_out, w_out)` cells, the adaptive windows axis by axis.
pub fn adaptive_avg_pool2d(x: &Tensor, output_size: (usize, usize)) -> Result<Tensor> {
    AdaptiveAvgPool2d::new(output_size).pool(x)
}

/// PyTorch's `F.adaptive_max_pool2d` (the values): [`adaptive_avg_pool2d`]'s cells, maxima.
pub fn adaptive_max_pool2d(x: &Tensor, output_size: (usize, usize)) -> Result<Tensor> {
    adaptive2d(x, output_size, Adaptive::Max)
}

/// The mean of `x` over `dims` for average pooling: an f16/bf16 input keeps its dtype under
/// autocast (summed with a wide accumulator and divided, then rounded), as PyTorch's pooling does
/// (it is on neither of autocast's lists; ResNet's global pooling then feeds the classifier's
/// half-precision product directly), where [`Tensor::mean`], a sum, would widen it to f32.
pub(crate) fn pooled_mean(x: &Tensor, dims: &[isize], keepdim: bool) -> Result<Tensor> {
    let _in_input_dtype = autocast_off();
    x.mean(dims, keepdim)
}

/// Average pooling to a fixed output size (`AdaptiveAvgPool2d`).
pub struct AdaptiveAvgPool2d {
    /// Output (height, width).
    pub output_size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// To `(h, w)`.
    pub fn new(output_size: (usize, usize)) -> Self {
        AdaptiveAvgPool2d { output_size }
    }
}

impl AdaptiveAvgPool2d {
    /// The pooling, global (1x1) in one reduction.
    fn pool(&self, x: &Tensor) -> Result<Tensor> {
        if self.output_size == (1, 1) && x.rank() == 4 {
            pooled_mean(x, &[2, 3], true)
        } else {
            adaptive2d(x, self.output_size, Adaptive::Avg)
        }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.pool(x)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Max pooling to a fixed output size (`AdaptiveMaxPool2d`).
pub struct AdaptiveMaxPool2d {
    /// Output (height, width).
    pub output_size: (usize, usize),
}

impl AdaptiveMaxPool2d {
    /// To `(h, w)`.
    pub fn new(output_size: (usize, usize)) -> Self {
        AdaptiveMaxPool2d { output_size }
    }
}

impl Module for AdaptiveMaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = adaptive2d(x, self.output_size, Adaptive::Max)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Average pooling of `[n, c, l]` to a fixed length (`AdaptiveAvgPool1d`).
pub struct AdaptiveAvgPool1d {
    /// Output length.
    pub output_size: usize,
}

impl AdaptiveAvgPool1d {
    /// To length `l`.
    pub fn new(output_size: usize) -> Self {
        AdaptiveAvgPool1d { output_size }
    }
}

impl Module for AdaptiveAvgPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = adaptive_avg_pool1d(x, self.output_size)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Max pooling of `[n, c, l]` to a fixed length (`AdaptiveMaxPool1d`).
pub struct AdaptiveMaxPool1d {
    /// Output length.
    pub output_size: usize,
}

impl AdaptiveMaxPool1d {
    /// To length `l`.
    pub fn new(output_size: usize) -> Self {
        AdaptiveMaxPool1d { output_size }
    }
}

impl Module for AdaptiveMaxPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = adaptive_max_pool1d(x, self.output_size)?;
        summary::note(self, &y);
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::{DType, Device, Generator};

    #[test]
    fn shortcuts_equal_the_cell_by_cell_pooling() {
        // Equal windows (12 -> 4, 12 -> 1), single values (3 -> 6, 1 -> 7), and uneven ones
        // (12 -> 5), in values and gradients, for both kinds.
        let mut rng = Generator::new(9);
        let cpu = Device::cpu();
        let x = rng
            .uniform([2, 3, 12, 3], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        let one = rng
            .uniform([2, 3, 1, 3], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        for kind in [Adaptive::Avg, Adaptive::Max] {
            for (input, dim, out) in [(&x, 2, 4), (&x, 2, 1), (&x, 3, 6), (&one, 2, 7), (&x, 2, 5)]
            {
                let reference = input.detach().requires_grad_();
                let y_ref = adaptive_cells(&reference, dim, out, kind).unwrap();
                let w = rng
                    .uniform(y_ref.dims().to_vec(), -1.0, 1.0, DType::F64, &cpu)
                    .unwrap();
                y_ref
                    .mul(&w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let leaf = input.detach().requires_grad_();
                let y = adaptive_axis(&leaf, dim, out, kind).unwrap();
                y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
                assert_eq!(y.dims(), y_ref.dims(), "{dim} -> {out}");
                for (what, a, b) in [
                    ("values", &y, &y_ref),
                    (
                        "gradients",
                        &leaf.grad().unwrap(),
                        &reference.grad().unwrap(),
                    ),
                ] {
                    let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
                    let worst = a
                        .iter()
                        .zip(&b)
                        .map(|(p, q)| (p - q).abs())
                        .fold(0.0, f64::max);
                    assert!(worst < 1e-15, "{what} {dim} -> {out}: off by {worst}");
                }
            }
        }
    }

    #[test]
    fn one_d_pooling_checks_its_rank_and_output_size() -> Result<()> {
        let cpu = Device::cpu();
        let image = Tensor::ones([2, 3, 4, 5], DType::F32, &cpu)?;
        let err = AdaptiveAvgPool1d::new(2).forward(&image).unwrap_err();
        assert!(err.to_string().contains("expects [n, c, l]"), "{err}");
        let signal = Tensor::ones([2, 3, 4], DType::F32, &cpu)?;
        let err = AdaptiveMaxPool1d::new(0).forward(&signal).unwrap_err();
        assert!(err.to_string().contains("into 0 cells"), "{err}");
        assert_eq!(
            AdaptiveMaxPool1d::new(7).forward(&signal)?.dims(),
            [2, 3, 7]
        );
        Ok(())
    }

    /// Under autocast, average pooling of an f16/bf16 input stays in that dtype (PyTorch's), with
    /// the values it has outside autocast: global (1x1), equal windows and uneven ones, and
    /// `GlobalAvgPool2d`.
    #[test]
    fn average_pooling_keeps_a_half_inputs_dtype_under_autocast() -> Result<()> {
        let cpu = Device::cpu();
        let mut rng = Generator::new(4);
        for dtype in [DType::F16, DType::BF16] {
            let x = rng.randn([2, 3, 6, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
            let pools: [(&str, Box<dyn Module>); 4] = [
                ("1x1", Box::new(AdaptiveAvgPool2d::new((1, 1)))),
                ("3x5", Box::new(AdaptiveAvgPool2d::new((3, 5)))),
                ("4x2", Box::new(AdaptiveAvgPool2d::new((4, 2)))),
                ("global", Box::new(crate::GlobalAvgPool2d)),
            ];
            for (name, pool) in pools {
                let outside = pool.forward(&x)?;
                let inside = sinew_tensor::with_autocast(dtype, || pool.forward(&x))?;
                assert_eq!(inside.dtype(), dtype, "{name} {dtype}");
                let bits = |t: &Tensor| t.to_dtype(DType::F32)?.to_vec::<f32>();
                assert_eq!(bits(&inside)?, bits(&outside)?, "{name} {dtype}");
            }
        }
        Ok(())
    }
}
