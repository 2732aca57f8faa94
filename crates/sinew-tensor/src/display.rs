//! `Display` like PyTorch's `print(tensor)`, summarised with `...` above 1000 elements.

use crate::{DType, Tensor};

/// Above this many elements only the first and last [`EDGE_ITEMS`] of each dim are printed.
const SUMMARY_THRESHOLD: usize = 1000;
/// Elements kept at each end of a summarised dim.
const EDGE_ITEMS: usize = 3;

fn format_value(v: f64, dtype: DType, all_integral: bool) -> String {
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
        _ if all_integral => format!("{v:.0}."),
        _ => format!("{v:.4}"),
    }
}

struct Printer<'a> {
    values: &'a [f64],
    dims: &'a [usize],
    dtype: DType,
    summarise: bool,
    all_integral: bool,
    width: usize,
}

impl Printer<'_> {
    fn indices(&self, size: usize) -> Vec<Option<usize>> {
        if self.summarise && size > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS)
                .map(Some)
                .chain([None])
                .chain((size - EDGE_ITEMS..size).map(Some))
                .collect()
        } else {
            (0..size).map(Some).collect()
        }
    }

    fn write(&self, out: &mut String, depth: usize, offset: usize, indent: usize) {
        if depth == self.dims.len() {
            let s = format_value(self.values[offset], self.dtype, self.all_integral);
            out.push_str(&format!("{s:>w$}", w = self.width));
            return;
        }
        let stride: usize = self.dims[depth + 1..].iter().product();
        out.push('[');
        let last = depth + 1 == self.dims.len();
        for (k, i) in self.indices(self.dims[depth]).into_iter().enumerate() {
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
        let values = match self.to_vec_f64() {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<unreadable: {e}>)"),
        };
        let all_integral = values.iter().all(|v| v.fract() == 0.0 || !v.is_finite());
        let summarise = values.len() > SUMMARY_THRESHOLD;
        let printer = Printer {
            values: &values,
            dims: self.dims(),
            dtype: self.dtype(),
            summarise,
            all_integral,
            width: 0,
        };
        let width = values
            .iter()
            .map(|&v| format_value(v, self.dtype(), all_integral).len())
            .max()
            .unwrap_or(0);
        let printer = Printer { width, ..printer };
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
}
