//! Custom ops defined outside the crate, as a user crate would: an out-of-place op with two
//! inputs and an in-place op with one source.

use sinew_tensor::{
    CpuStorage, CustomInplaceOp, CustomOp, DType, Device, Error, Layout, Result, Shape, Tensor,
};

/// `out[i] = a[i] * a[i] + b[i]` on same-shape f32 inputs (any layouts).
struct SquarePlus;

impl CustomOp for SquarePlus {
    fn name(&self) -> &'static str {
        "square_plus"
    }
    fn cpu_fwd(&self, inputs: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let [(CpuStorage::F32(a), la), (CpuStorage::F32(b), lb)] = inputs else {
            return Err(Error::invalid("square_plus", "expects two f32 inputs"));
        };
        if la.shape() != lb.shape() {
            return Err(Error::ShapeMismatch {
                op: "square_plus",
                lhs: la.shape().clone(),
                rhs: lb.shape().clone(),
            });
        }
        let out = la
            .offsets()
            .zip(lb.offsets())
            .map(|(i, j)| a[i] * a[i] + b[j])
            .collect();
        Ok((CpuStorage::F32(out), la.shape().clone()))
    }
}

/// `dst[i] = max(dst[i], src[i])` on f32.
struct MaxInto;

impl CustomInplaceOp for MaxInto {
    fn name(&self) -> &'static str {
        "max_into"
    }
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        srcs: &[(&CpuStorage, &Layout)],
    ) -> Result<()> {
        let (CpuStorage::F32(d), [(CpuStorage::F32(s), sl)]) = (dst, srcs) else {
            return Err(Error::invalid("max_into", "expects f32 and one f32 source"));
        };
        for (i, j) in dl.offsets().zip(sl.offsets()) {
            d[i] = d[i].max(s[j]);
        }
        Ok(())
    }
}

/// Returns a shape that does not fit its data.
struct Liar;

impl CustomOp for Liar {
    fn name(&self) -> &'static str {
        "liar"
    }
    fn cpu_fwd(&self, _: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(vec![1.0; 3]), Shape::new([2, 2])))
    }
}

#[test]
fn out_of_place_custom_op_reads_views() {
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0, 40.0], [2, 2]).unwrap();
    // a.T = [[1, 3], [2, 4]]
    let out = Tensor::apply_op(&[&a.t().unwrap(), &b], &SquarePlus).unwrap();
    assert_eq!(out.dims(), &[2, 2]);
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![11.0, 29.0, 34.0, 56.0]);
    // The same tensor twice is fine (one storage, read-locked once).
    let out = Tensor::apply_op(&[&a, &a], &SquarePlus).unwrap();
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![2.0, 6.0, 12.0, 20.0]);
    // The op's own errors come through.
    let i = Tensor::from_vec(vec![1i64], [1]).unwrap();
    assert!(
        Tensor::apply_op(&[&i, &i], &SquarePlus)
            .unwrap_err()
            .to_string()
            .contains("two f32")
    );
    assert!(matches!(
        Tensor::apply_op(&[], &SquarePlus),
        Err(Error::InvalidArgument {
            op: "square_plus",
            ..
        })
    ));
    assert!(matches!(
        Tensor::apply_op(&[&a], &Liar),
        Err(Error::ElementCount {
            op: "liar",
            len: 3,
            ..
        })
    ));
}

#[test]
fn inplace_custom_op_goes_through_the_write_path() {
    let base = Tensor::from_vec(vec![0.0f32, 5.0, 0.0, 5.0, 0.0, 5.0], [2, 3]).unwrap();
    let view = base.narrow(1, 1, 2).unwrap(); // [[5, 0], [0, 5]]
    let src = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    view.apply_inplace_op(&[&src], &MaxInto).unwrap();
    assert_eq!(
        base.to_vec::<f32>().unwrap(),
        vec![0.0, 5.0, 2.0, 5.0, 3.0, 5.0]
    );
    assert_eq!(base.version(), 1);
    // A source aliasing the destination is read from a copy: max(x, x.T) is symmetric.
    let sq = Tensor::from_vec(vec![1.0f32, 7.0, 3.0, 2.0], [2, 2]).unwrap();
    sq.apply_inplace_op(&[&sq.t().unwrap()], &MaxInto).unwrap();
    assert_eq!(sq.to_vec::<f32>().unwrap(), vec![1.0, 7.0, 7.0, 2.0]);
    // Expanded destinations are refused before the op runs.
    let expanded = Tensor::zeros([1, 2], DType::F32, &Device::cpu())
        .unwrap()
        .expand([2, 2])
        .unwrap();
    let err = expanded.apply_inplace_op(&[&src], &MaxInto).unwrap_err();
    assert!(err.to_string().contains("single memory location"));
}

#[test]
fn storage_written_through_a_closure_goes_through_the_write_path() {
    let base = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [6]).unwrap();
    let middle = base.narrow(0, 2, 3).unwrap();
    // Negate the view's elements where they live, as a collective reducing a bucket would.
    let seen = middle
        .with_storage_mut(|storage, layout| {
            let Some(CpuStorage::F64(values)) = storage.as_any_mut().downcast_mut::<CpuStorage>()
            else {
                return Err(Error::invalid("test", "expected f64 host storage"));
            };
            let range = layout.offset()..layout.offset() + layout.shape().elem_count();
            values[range.clone()].iter_mut().for_each(|v| *v = -*v);
            Ok(range)
        })
        .unwrap();
    assert_eq!(seen, 2..5);
    assert_eq!(
        base.to_vec::<f64>().unwrap(),
        vec![1.0, 2.0, -3.0, -4.0, -5.0, 6.0]
    );
    assert_eq!(base.version(), 1);
    // A leaf that requires a gradient is refused outside no_grad, and the closure never runs.
    let leaf = Tensor::from_vec(vec![1.0f32], [1])
        .unwrap()
        .requires_grad_();
    let err = leaf
        .with_storage_mut(|_, _| -> Result<()> { panic!("must not run") })
        .unwrap_err();
    assert!(err.to_string().contains("no_grad"), "{err}");
}
