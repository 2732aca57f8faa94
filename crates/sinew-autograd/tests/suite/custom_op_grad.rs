//! A differentiable op defined outside the framework (as a fused op in another crate would be):
//! CPU forward through `CustomOp`, backward rule through `CustomOp::backward`, checked against
//! finite differences and against the same math built from ops.

use std::sync::Arc;

use sinew_autograd::gradcheck::{GradcheckOptions, gradcheck};
use sinew_tensor::{CpuStorage, CustomOp, Layout, Result, Shape, Tensor};

/// `x * tanh(y)`, elementwise on same-shape inputs.
struct MulTanh;

impl CustomOp for MulTanh {
    fn name(&self) -> &'static str {
        "mul_tanh"
    }

    fn cpu_fwd(&self, inputs: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let [(CpuStorage::F64(x), xl), (CpuStorage::F64(y), yl)] = inputs else {
            return Err(sinew_tensor::Error::invalid("mul_tanh", "two f64 inputs"));
        };
        if xl.shape() != yl.shape() {
            return Err(sinew_tensor::Error::invalid("mul_tanh", "same shapes"));
        }
        let out: Vec<f64> = xl
            .offsets()
            .zip(yl.offsets())
            .map(|(i, j)| x[i] * y[j].tanh())
            .collect();
        Ok((CpuStorage::F64(out), xl.shape().clone()))
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y) = (&inputs[0], &inputs[1]);
        let t = y.tanh()?;
        let gx = grad.mul(&t)?;
        let gy = grad.mul(x)?.mul(&t.square()?.rsub_scalar(1.0)?)?;
        Ok(vec![Some(gx), Some(gy)])
    }
}

#[test]
fn a_custom_op_records_its_backward_and_passes_gradcheck() {
    let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0, 0.7], [2, 2]).unwrap();
    let y = Tensor::from_vec(vec![0.5f64, 0.1, -0.9, 1.5], [2, 2]).unwrap();
    let op: Arc<dyn CustomOp> = Arc::new(MulTanh);
    let report = gradcheck(
        |v| Tensor::apply_op_tracked(&[&v[0], &v[1]], op.clone()),
        &[x.clone(), y.clone()],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(report.passed(), "{report:?}");

    // Same gradients as the composite.
    let (xa, ya) = (x.clone().requires_grad_(), y.clone().requires_grad_());
    Tensor::apply_op_tracked(&[&xa, &ya], op.clone())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let (xb, yb) = (x.requires_grad_(), y.requires_grad_());
    xb.mul(&yb.tanh().unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (a, b) in [(xa, xb), (ya, yb)] {
        let (a, b) = (a.grad().unwrap(), b.grad().unwrap());
        let diff = a.sub(&b).unwrap().abs().unwrap().max(&[], false).unwrap();
        assert!(diff.item().unwrap() < 1e-12);
    }
}

#[test]
fn an_untracked_custom_op_refuses_tracked_inputs_instead_of_dropping_the_gradient() {
    let x = Tensor::from_vec(vec![1.0f64], [1])
        .unwrap()
        .requires_grad_();
    let err = Tensor::apply_op(&[&x, &x], &MulTanh)
        .unwrap_err()
        .to_string();
    assert!(err.contains("apply_op_tracked"), "{err}");
}
