//! Test support for the fused layers and losses, which are checked against their op-by-op
//! forms to second order: one run gives the output, the first-order gradients of the inputs
//! and the second-order gradient of the first one.

use sinew_tensor::{BackwardOptions, Result, Tensor};

/// What one run of a forward gives.
pub(crate) struct Orders {
    /// The output, flattened.
    output: Vec<f64>,
    /// The gradient of `sum(output * probe)` for each input.
    first: Vec<Vec<f64>>,
    /// The gradient of `|d sum(output * probe) / d inputs[0]|^2` for `inputs[0]` (through
    /// create_graph).
    second: Vec<f64>,
}

impl Orders {
    /// Runs `forward` (f64, reading `inputs`, which require gradients) twice: a plain backward
    /// of `sum(output * probe)` (`sum(output)` without a probe), then one recording the graph,
    /// differentiated again.
    pub(crate) fn of(
        forward: impl Fn() -> Result<Tensor>,
        probe: Option<&Tensor>,
        inputs: &[&Tensor],
    ) -> Result<Orders> {
        let objective = |y: &Tensor| match probe {
            Some(p) => y.mul(p)?.sum_all(),
            None => y.sum_all(),
        };
        let y = forward()?;
        objective(&y)?.backward()?;
        let first = inputs
            .iter()
            .map(|t| t.grad().expect("a gradient").to_vec::<f64>())
            .collect::<Result<Vec<_>>>()?;
        for t in inputs {
            t.zero_grad();
        }
        let options = BackwardOptions {
            create_graph: true,
            ..Default::default()
        };
        objective(&forward()?)?.backward_with(None, options)?;
        let x = inputs[0];
        let gx = x.grad().expect("a gradient");
        x.zero_grad();
        gx.square()?.sum_all()?.backward()?;
        Ok(Orders {
            output: y.flatten_all()?.to_vec::<f64>()?,
            first,
            second: x.grad().expect("a gradient").to_vec::<f64>()?,
        })
    }

    /// Asserts every value is within `tol` relative (to `1 + |reference|`) of `reference`'s.
    pub(crate) fn assert_close(&self, reference: &Orders, tol: f64, what: &str) {
        let close = |a: &[f64], b: &[f64], part: &str| {
            assert_eq!(a.len(), b.len(), "{what}: {part} lengths");
            for (i, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= tol * (1.0 + q.abs()),
                    "{what}: {part}[{i}] {p} vs {q}"
                );
            }
        };
        close(&self.output, &reference.output, "output");
        assert_eq!(self.first.len(), reference.first.len(), "{what}: inputs");
        for (k, (f, r)) in self.first.iter().zip(&reference.first).enumerate() {
            close(f, r, &format!("gradient of input {k}"));
        }
        close(&self.second, &reference.second, "second-order gradient");
    }
}
