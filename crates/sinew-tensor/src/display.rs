//! `Display` like PyTorch's `print(tensor)`, summarised with `...` above 1000 elements.

use crate::{DType, Tensor};

/// Above this many elements only the first and last [`EDGE_ITEMS`] of each dim are printed.
const SUMMARY_THRESHOLD: usize = 1000;
/// Elements kept at each end of a summarised dim.
const EDGE_ITEMS: usize = 3;

/// How floats are written, chosen once per tensor as PyTorch's `_Formatter` does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FloatMode {
    /// Every finite value is integral: `3.`.
    Integral,
    /// Fixed point with 4 decimals: `3.2500`.
    Fixed,
    /// Scientific with 4 decimals: `1.0000e-10`.
    Scientific,
}

impl FloatMode {
    /// PyTorch's rules over the nonzero finite magnitudes of the printed values: scientific when
    /// max/min > 1000 or max > 1e8 (or, unless all are integral, min < 1e-4).
    fn choose(values: &[f64]) -> FloatMode {
        let (mut min, mut max, mut integral, mut any) = (f64::INFINITY, 0.0f64, true, false);
        for &v in values.iter().filter(|v| v.is_finite() && **v != 0.0) {
            let a = v.abs();
            (min, max, any) = (min.min(a), max.max(a), true);
            integral &= v.fract() == 0.0;
        }
        if !any {
            return FloatMode::Integral;
        }
        let wide = max / min > 1000.0 || max > 1.0e8;
        match integral {
            true if wide => FloatMode::Scientific,
            true => FloatMode::Integral,
            false if wide || min < 1.0e-4 => FloatMode::Scientific,
            false => FloatMode::Fixed,
        }
    }
}

/// `{:.4e}` as Python writes it: a signed exponent of at least two digits (`1.0000e+10`).
fn scientific(v: f64) -> String {
    let rust = format!("{v:.4e}");
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
        }
        None => rust,
    }
}

fn format_value(v: f64, dtype: DType, mode: FloatMode) -> String {
    match dtype {
        DType::Bool => {
            if v != 0.0 {
                "True".into()
            } else {
                "False".into()
            }
        }
        DType::I64 | DType::U8 => format!("{}", v as i64),
        _ if v.is_nan() => "nan".into(),
        _ if v.is_infinite() => {
            if v > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        _ => match mode {
            FloatMode::Integral => format!("{v:.0}."),
            FloatMode::Fixed => format!("{v:.4}"),
            FloatMode::Scientific => scientific(v),
        },
    }
}

/// The elements PyTorch shows: the whole tensor, or (above [`SUMMARY_THRESHOLD`]) only the
/// first and last [`EDGE_ITEMS`] of each longer dim, gathered from views so only the shown
/// elements are read (a huge broadcast view is never materialised).
fn shown_values(t: &Tensor, summarise: bool) -> crate::Result<(Vec<usize>, Vec<f64>)> {
    let mut shown = t.clone();
    if summarise {
        for d in 0..t.rank() {
            let size = t.dims()[d];
            if size > 2 * EDGE_ITEMS {
                let head = shown.narrow(d as isize, 0, EDGE_ITEMS)?;
                let tail = shown.narrow(d as isize, size - EDGE_ITEMS, EDGE_ITEMS)?;
                shown = Tensor::cat(&[head, tail], d as isize)?;
            }
        }
    }
    Ok((shown.dims().to_vec(), shown.to_vec_f64()?))
}

struct Printer<'a> {
    /// The values shown, row-major over `shown_dims`.
    values: &'a [f64],
    /// Sizes of the tensor.
    dims: &'a [usize],
    /// Sizes of the shown block (`dims`, or at most `2 * EDGE_ITEMS` per summarised dim).
    shown_dims: &'a [usize],
    dtype: DType,
    summarise: bool,
    mode: FloatMode,
    width: usize,
}

impl Printer<'_> {
    /// Positions of dim `depth` in the shown block, `None` for the `...` of a summarised dim.
    fn indices(&self, depth: usize) -> Vec<Option<usize>> {
        let size = self.dims[depth];
        if self.summarise && size > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS)
                .map(Some)
                .chain([None])
                .chain((EDGE_ITEMS..2 * EDGE_ITEMS).map(Some))
                .collect()
        } else {
            (0..size).map(Some).collect()
        }
    }

    fn write(&self, out: &mut String, depth: usize, offset: usize, indent: usize) {
        if depth == self.dims.len() {
            let s = format_value(self.values[offset], self.dtype, self.mode);
            out.push_str(&format!("{s:>w$}", w = self.width));
            return;
        }
        let stride: usize = self.shown_dims[depth + 1..].iter().product();
        out.push('[');
        let last = depth + 1 == self.dims.len();
        for (k, i) in self.indices(depth).into_iter().enumerate() {
            if k > 0 {
                out.push(',');
                if last {
                    out.push(' ');
                } else {
                    out.push_str(&"\n".repeat(self.dims.len() - depth - 1));
                    out.push_str(&" ".repeat(indent + depth + 1));
                }
            }
            match i {
                Some(i) => self.write(out, depth + 1, offset + i * stride, indent),
                // PyTorch pads the ellipsis of the innermost dim with one space: `2,  ..., 1997`.
                None if last => out.push_str(" ..."),
                None => out.push_str("..."),
            }
        }
        out.push(']');
    }
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let summarise = self.elem_count() > SUMMARY_THRESHOLD;
        let (shown_dims, values) = match shown_values(self, summarise) {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<unreadable: {e}>)"),
        };
        let mode = FloatMode::choose(&values);
        let width = values
            .iter()
            .map(|&v| format_value(v, self.dtype(), mode).len())
            .max()
            .unwrap_or(0);
        let printer = Printer {
            values: &values,
            dims: self.dims(),
            shown_dims: &shown_dims,
            dtype: self.dtype(),
            summarise,
            mode,
            width,
        };
        let mut body = String::new();
        if values.is_empty() {
            body.push_str("[]");
        } else {
            printer.write(&mut body, 0, 0, "tensor(".len());
        }
        write!(f, "tensor({body}")?;
        if values.is_empty() && self.rank() > 1 {
            // PyTorch: print(torch.zeros(0, 3)) = tensor([], size=(0, 3))
            let dims: Vec<String> = self.dims().iter().map(|d| d.to_string()).collect();
            write!(f, ", size=({})", dims.join(", "))?;
        }
        if !matches!(self.dtype(), DType::F32 | DType::I64 | DType::Bool) {
            write!(f, ", dtype={}", self.dtype())?;
        }
        if !self.device().is_cpu() {
            write!(f, ", device='{}'", self.device())?;
        }
        write!(f, ")")
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor {{ shape: {}, strides: {:?}, dtype: {}, device: {} }}",
            self.shape(),
            self.stride(),
            self.dtype(),
            self.device()
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn prints_like_pytorch() {
        let t = Tensor::from_vec(vec![1.5f32, -2.0, 3.25, 4.0], [2, 2]).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([[ 1.5000, -2.0000],\n        [ 3.2500,  4.0000]])"
        );
        let i = Tensor::from_vec(vec![1i64, 20, 3], [3]).unwrap();
        assert_eq!(i.to_string(), "tensor([ 1, 20,  3])");
        assert_eq!(Tensor::scalar(2.0f64).to_string(), "tensor(2., dtype=f64)");
        assert_eq!(
            Tensor::from_vec(vec![true, false], [2])
                .unwrap()
                .to_string(),
            "tensor([ True, False])"
        );
    }

    #[test]
    fn summarises_large_tensors() {
        // print(torch.arange(2000)) = tensor([   0,    1,    2,  ..., 1997, 1998, 1999])
        let t = Tensor::arange(0.0, 2000.0, 1.0, DType::I64, &Device::cpu()).unwrap();
        assert_eq!(
            t.to_string(),
            "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
        );
        assert!(format!("{t:?}").contains("shape: [2000]"));
    }

    #[test]
    fn scientific_notation_follows_pytorch() {
        // print(torch.tensor([1e-10])) = tensor([1.0000e-10])
        let t = Tensor::from_vec(vec![1e-10f32], [1]).unwrap();
        assert_eq!(t.to_string(), "tensor([1.0000e-10])");
        // print(torch.tensor([1., 1e10])) = tensor([1.0000e+00, 1.0000e+10])
        let t = Tensor::from_vec(vec![1.0f64, 1e10], [2]).unwrap();
        assert_eq!(t.to_string(), "tensor([1.0000e+00, 1.0000e+10], dtype=f64)");
        // print(torch.tensor([0.5, 1e-5])) = tensor([5.0000e-01, 1.0000e-05])
        let t = Tensor::from_vec(vec![0.5f32, 1e-5], [2]).unwrap();
        assert_eq!(t.to_string(), "tensor([5.0000e-01, 1.0000e-05])");
        // print(torch.tensor([1.5, 200.])) stays fixed: tensor([  1.5000, 200.0000])
        let t = Tensor::from_vec(vec![1.5f32, 200.0], [2]).unwrap();
        assert_eq!(t.to_string(), "tensor([  1.5000, 200.0000])");
    }

    #[test]
    fn summarised_2d_reads_the_corners() {
        // print(torch.arange(10000.).reshape(100, 100)) shows rows 0-2 and 97-99, cols likewise
        // (PyTorch also wraps lines at 80 columns, which this printer does not).
        let t = Tensor::arange(0.0, 10000.0, 1.0, DType::F32, &Device::cpu())
            .unwrap()
            .reshape([100, 100])
            .unwrap();
        let s = t.to_string();
        let rows: Vec<&str> = s.lines().collect();
        assert_eq!(rows.len(), 7, "{s}");
        assert_eq!(
            rows[0],
            "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 9.7000e+01, 9.8000e+01, 9.9000e+01],"
        );
        assert_eq!(rows[3], "        ...,");
        assert_eq!(
            rows[6],
            "        [9.9000e+03, 9.9010e+03, 9.9020e+03,  ..., 9.9970e+03, 9.9980e+03, 9.9990e+03]])"
        );
    }
}
