//! Tests of [`crate::BackwardCtx::cast_from_dtype`]: when a rule may return a cast input's
//! gradient in the dtype it was cast from.

use std::sync::{Arc, Mutex};

use crate::{DType, Save, Tensor};

type Log = Arc<Mutex<Vec<Option<DType>>>>;

fn leaf(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()])
        .unwrap()
        .requires_grad_()
}

/// An op that doubles its input, whose rule logs `cast_from_dtype(0)` and returns its
/// gradient in that dtype where allowed.
fn double(x: &Tensor, log: &Log) -> Tensor {
    let log = log.clone();
    let out = x.mul_scalar(2.0).unwrap();
    Tensor::from_op(out, "double", &[x], Save::NOTHING, move |ctx, g| {
        let wide = ctx.cast_from_dtype(0);
        log.lock().unwrap().push(wide);
        let g = g.mul_scalar(2.0)?;
        Ok(vec![Some(match wide {
            Some(dtype) => g.to_dtype(dtype)?,
            None => g,
        })])
    })
}

#[test]
fn a_rule_may_return_a_cast_inputs_gradient_in_the_source_dtype() {
    let seen: Log = Arc::default();
    // The gradient of w (f32) through `to_dtype(to)` and an op that doubles its input,
    // whose rule widens its gradient where `cast_from_dtype` allows; `uses` uses of the
    // cast, the cast's gradient retained or not.
    let run = |to: DType, uses: usize, retain: bool| {
        let w = leaf(&[1.5, -2.0]).to_dtype(DType::F64).unwrap();
        let w = w.detach().requires_grad_();
        let cast = w.to_dtype(to).unwrap();
        if retain {
            cast.retain_grad().unwrap();
        }
        let y = (1..uses).fold(double(&cast, &seen), |y, _| {
            y.add(&double(&cast, &seen)).unwrap()
        });
        y.sum_all().unwrap().backward().unwrap();
        let grad = w.grad().unwrap();
        assert_eq!(grad.dtype(), DType::F64);
        grad.to_vec::<f64>().unwrap()
    };
    let expect = |got: Vec<f64>, want: Vec<f64>, wide: Vec<Option<DType>>| {
        assert_eq!(got, want);
        assert_eq!(std::mem::take(&mut *seen.lock().unwrap()), wide);
    };
    // One use of an f64 -> f32 cast: the rule may answer in f64.
    expect(
        run(DType::F32, 1, false),
        vec![2.0, 2.0],
        vec![Some(DType::F64)],
    );
    // Two uses (their sum is in f32), or the cast's gradient retained (in f32): not allowed.
    expect(run(DType::F32, 2, false), vec![4.0, 4.0], vec![None, None]);
    expect(run(DType::F32, 1, true), vec![2.0, 2.0], vec![None]);
    // A cast to a wider dtype: its gradient rounds, so the rule must not answer for it.
    let w = leaf(&[1.0]);
    let cast = w.to_dtype(DType::F64).unwrap();
    let log = seen.clone();
    let y = Tensor::from_op(
        cast.clone(),
        "id",
        &[&cast],
        Save::NOTHING,
        move |ctx, g| {
            log.lock().unwrap().push(ctx.cast_from_dtype(0));
            Ok(vec![Some(g.clone())])
        },
    );
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(w.grad().unwrap().dtype(), DType::F32);
    expect(vec![], vec![], vec![None]);
}

/// A cast seen through one `permute` (a linear layer's `weight.t()`): the rule may answer in the
/// cast's source dtype, and the view passes that gradient on; not through another view, two
/// permutes, a view used twice or one retaining its gradient.
#[test]
fn a_transposed_cast_is_seen_through() {
    let seen: Log = Arc::default();
    let run = |view: &dyn Fn(&Tensor) -> Tensor, uses: usize, retain: bool| {
        let w = Tensor::from_vec(vec![1.5f64, -2.0, 0.25, 3.0, 4.0, -1.0], [2, 3])
            .unwrap()
            .requires_grad_();
        let viewed = view(&w.to_dtype(DType::F32).unwrap());
        if retain {
            viewed.retain_grad().unwrap();
        }
        let y = (1..uses).fold(double(&viewed, &seen), |y, _| {
            y.add(&double(&viewed, &seen)).unwrap()
        });
        y.sum_all().unwrap().backward().unwrap();
        let grad = w.grad().unwrap();
        assert_eq!((grad.dtype(), grad.dims()), (DType::F64, &[2, 3][..]));
        assert_eq!(grad.to_vec::<f64>().unwrap(), vec![2.0 * uses as f64; 6]);
        std::mem::take(&mut *seen.lock().unwrap())
    };
    let t = |x: &Tensor| x.t().unwrap();
    assert_eq!(run(&t, 1, false), vec![Some(DType::F64)]);
    assert_eq!(run(&t, 2, false), vec![None, None]);
    assert_eq!(run(&t, 1, true), vec![None]);
    let tt = |x: &Tensor| x.t().unwrap().t().unwrap();
    assert_eq!(run(&tt, 1, false), vec![None]);
    let reshaped = |x: &Tensor| x.reshape([3, 2]).unwrap();
    assert_eq!(run(&reshaped, 1, false), vec![None]);
}
