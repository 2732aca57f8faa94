//! Per-channel reductions and affine maps over `[n, C, ...]` tensors, batch norm's kernels
//! (`Backend::channel_sums`, `Backend::channel_lincomb`; CPU: `cpu/channel.rs`, CUDA:
//! `cuda/channel.cu`). Not recorded by autograd: batch norm records its own backward rule,
//! written with these same two ops.

use crate::{DType, Error, MaskedLincomb, Result, Tensor};

impl Tensor {
    /// Checks `self` is a float `[n, C, ...]` tensor and `other` (if any) matches it.
    pub(crate) fn check_channel_operands(
        &self,
        op: &'static str,
        other: Option<&Tensor>,
    ) -> Result<usize> {
        self.check_float(op)?;
        if self.rank() < 2 {
            return Err(Error::invalid(
                op,
                format!("expects [n, C, ...], got {}", self.shape()),
            ));
        }
        if let Some(o) = other {
            self.check_same_device(op, o)?;
            self.check_same_dtype(op, o)?;
            if o.shape() != self.shape() {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: self.shape().clone(),
                    rhs: o.shape().clone(),
                });
            }
        }
        if crate::is_grad_enabled()
            && (self.requires_grad() || other.is_some_and(Tensor::requires_grad))
        {
            return Err(Error::invalid(
                op,
                "is not differentiable: call it under no_grad or on detached tensors",
            ));
        }
        Ok(self.dims()[1])
    }

    /// Per-channel sums over every dim but 1, in f64: a `[2, C]` f64 tensor holding
    /// `sum(self)` and `sum(self * other)` (`self * self` without `other`). Not differentiable.
    pub fn channel_sums(&self, other: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "channel_sums";
        let c = self.check_channel_operands(OP, other)?;
        let backend = self.device().backend();
        let storage = match other {
            None => self.with_storage(|s, l| backend.channel_sums(s, l, None))?,
            Some(o) => Tensor::with_storages([self, o], |[s, t]| {
                backend.channel_sums(s, self.layout(), Some((t, o.layout())))
            })?,
        };
        Tensor::from_storage(storage, [2, c], self.device().clone())
    }

    /// `alpha[c] * self + beta[c] * other + gamma[c]` for channel `c` (dim 1), `coef` an f64
    /// `[3, C]` tensor of the rows `alpha`, `beta`, `gamma` (`beta` unused without `other`),
    /// computed in `self`'s dtype (f32 for f16 and bf16, rounded once at the end), each product
    /// and sum rounded on its own; a contiguous tensor of `self`'s shape. Not differentiable.
    pub fn channel_lincomb(&self, other: Option<&Tensor>, coef: &Tensor) -> Result<Tensor> {
        Ok(self.lincomb(other, coef, Around::Nothing)?.0)
    }

    /// `self.channel_lincomb(None, coef)?.relu()` in one pass where the backend has the kernel
    /// ([`crate::Backend::channel_lincomb_relu`]: batch norm's output map followed by ReLU),
    /// else the two ops; the same values. Not differentiable.
    pub fn channel_lincomb_relu(&self, coef: &Tensor) -> Result<Tensor> {
        Ok(self.lincomb(None, coef, Around::Relu(None))?.0)
    }

    /// `self.channel_lincomb(None, coef)?.add_relu(residual)` (`residual` of `self`'s shape and
    /// dtype) in one pass where the backend has the kernel
    /// ([`crate::Backend::channel_lincomb_relu`]: a ResNet block's last batch norm, its
    /// shortcut's sum and the ReLU), else the two ops; the same values. Not differentiable.
    pub fn channel_lincomb_add_relu(&self, residual: &Tensor, coef: &Tensor) -> Result<Tensor> {
        self.check_channel_operands("channel_lincomb_add_relu", Some(residual))?;
        Ok(self.lincomb(None, coef, Around::Relu(Some(residual)))?.0)
    }

    /// `self.relu_grad(mask)?.channel_lincomb(other, coef)` (`mask` of `self`'s shape and
    /// dtype: the output of a ReLU that followed) in one pass where the backend has the kernel
    /// ([`crate::Backend::channel_lincomb_masked`]: the input gradient of batch norm followed
    /// by ReLU), else the two ops; the same values. Not differentiable.
    pub fn channel_lincomb_masked(
        &self,
        mask: &Tensor,
        other: Option<&Tensor>,
        coef: &Tensor,
    ) -> Result<Tensor> {
        self.check_channel_operands("channel_lincomb_masked", Some(mask))?;
        Ok(self.lincomb(other, coef, Around::Mask(mask, false))?.0)
    }

    /// `self.relu_grad(mask)` and [`Tensor::channel_lincomb_masked`] of it, both from one pass
    /// where the backend has the kernel (the input gradients of batch norm followed by a
    /// residual's sum and ReLU: the residual's is the masked gradient itself); the same
    /// values. Not differentiable.
    pub fn relu_grad_channel_lincomb(
        &self,
        mask: &Tensor,
        other: Option<&Tensor>,
        coef: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        self.check_channel_operands("relu_grad_channel_lincomb", Some(mask))?;
        let (out, masked) = self.lincomb(other, coef, Around::Mask(mask, true))?;
        let masked = masked.ok_or_else(|| {
            Error::invalid(
                "relu_grad_channel_lincomb",
                "the backend kept no masked gradient",
            )
        })?;
        Ok((masked, out))
    }

    /// [`Tensor::channel_lincomb`] with `around`'s ReLU step, and the masked `self` when
    /// `around` asks to keep it.
    fn lincomb(
        &self,
        other: Option<&Tensor>,
        coef: &Tensor,
        around: Around<'_>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        const OP: &str = "channel_lincomb";
        let c = self.check_channel_operands(OP, other)?;
        self.check_same_device(OP, coef)?;
        if coef.dtype() != DType::F64 || coef.dims() != [3, c] {
            return Err(Error::invalid(
                OP,
                format!(
                    "coefficients must be f64 [3, {c}], got {} {}",
                    coef.dtype(),
                    coef.shape()
                ),
            ));
        }
        // The backends read the first 3C elements of the coefficients' storage.
        let coef = if coef.is_contiguous() && coef.layout().offset() == 0 {
            coef.clone()
        } else {
            coef.force_contiguous()?
        };
        let (shape, device) = (self.shape(), self.device());
        let fused = self.fused_lincomb(other, &coef, around)?;
        if let Some((out, masked)) = fused {
            let masked = masked
                .map(|m| Tensor::from_storage(m, shape.clone(), device.clone()))
                .transpose()?;
            return Ok((
                Tensor::from_storage(out, shape.clone(), device.clone())?,
                masked,
            ));
        }
        let _guard = crate::no_grad();
        let masked = match around {
            Around::Mask(mask, _) => Some(self.relu_grad(mask)?),
            _ => None,
        };
        let a = masked.as_ref().unwrap_or(self);
        let backend = device.backend();
        let storage = match other {
            None => Tensor::with_storages([a, &coef], |[s, k]| {
                backend.channel_lincomb(s, a.layout(), None, k)
            })?,
            Some(o) => Tensor::with_storages([a, o, &coef], |[s, t, k]| {
                backend.channel_lincomb(s, a.layout(), Some((t, o.layout())), k)
            })?,
        };
        let out = Tensor::from_storage(storage, shape.clone(), device.clone())?;
        match around {
            Around::Relu(None) => Ok((out.relu()?, None)),
            Around::Relu(Some(residual)) => Ok((out.add_relu(residual)?, None)),
            Around::Mask(_, keep) => Ok((out, masked.filter(|_| keep))),
            Around::Nothing => Ok((out, None)),
        }
    }

    /// The backend's one-pass kernel for `around`, if it has one (`None` for a plain map).
    fn fused_lincomb(
        &self,
        other: Option<&Tensor>,
        coef: &Tensor,
        around: Around<'_>,
    ) -> Result<Option<MaskedLincomb>> {
        let backend = self.device().backend();
        let layout = self.layout();
        match around {
            Around::Nothing => Ok(None),
            Around::Relu(None) => Ok(Tensor::with_storages([self, coef], |[s, k]| {
                backend.channel_lincomb_relu(s, layout, None, k)
            })?
            .map(|out| (out, None))),
            Around::Relu(Some(r)) => Ok(Tensor::with_storages([self, r, coef], |[s, t, k]| {
                backend.channel_lincomb_relu(s, layout, Some((t, r.layout())), k)
            })?
            .map(|out| (out, None))),
            Around::Mask(mask, keep) => {
                let layouts = (layout, mask.layout());
                match other {
                    None => Tensor::with_storages([self, mask, coef], |[s, m, k]| {
                        backend.channel_lincomb_masked((s, m), layouts, None, k, keep)
                    }),
                    Some(o) => Tensor::with_storages([self, mask, o, coef], |[s, m, t, k]| {
                        let other = Some((t, o.layout()));
                        backend.channel_lincomb_masked((s, m), layouts, other, k, keep)
                    }),
                }
            }
        }
    }
}

/// The ReLU step around a [`Tensor::channel_lincomb`]: none, a ReLU of its result (after adding
/// a residual, when given), or its first operand taken as a gradient back through a ReLU whose
/// output is the mask (and that masked gradient kept too, when asked).
#[derive(Clone, Copy)]
enum Around<'t> {
    /// The map alone.
    Nothing,
    /// ReLU of the map, or of the map plus a residual.
    Relu(Option<&'t Tensor>),
    /// The map of `relu_grad(self, mask)`; `true`: that masked gradient returned too.
    Mask(&'t Tensor, bool),
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Generator, Tensor};

    fn reference_sums(a: &Tensor, b: &Tensor) -> (Vec<f64>, Vec<f64>) {
        let dims: Vec<isize> = std::iter::once(0).chain(2..a.rank() as isize).collect();
        let a64 = a.to_dtype(DType::F64).unwrap();
        let b64 = b.to_dtype(DType::F64).unwrap();
        let s = a64.sum(&dims, false).unwrap().to_vec::<f64>().unwrap();
        let p = a64
            .mul(&b64)
            .unwrap()
            .sum(&dims, false)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        (s, p)
    }

    #[test]
    fn sums_match_the_op_by_op_reductions_on_any_layout() {
        let mut g = Generator::new(3);
        let cpu = Device::cpu();
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let a = g.randn([5, 3, 4, 6], dtype, &cpu).unwrap();
            let b = g.randn([5, 3, 4, 6], dtype, &cpu).unwrap();
            // A non-contiguous view too: channels last, permuted back.
            let a_t = a
                .permute(&[0, 2, 3, 1])
                .unwrap()
                .contiguous()
                .unwrap()
                .permute(&[0, 3, 1, 2])
                .unwrap();
            for (x, y) in [(&a, &b), (&a_t, &b)] {
                let sums = x.channel_sums(Some(y)).unwrap().to_vec::<f64>().unwrap();
                let (s, p) = reference_sums(x, y);
                for k in 0..3 {
                    assert!((sums[k] - s[k]).abs() < 1e-9, "{dtype} sum {k}");
                    assert!((sums[3 + k] - p[k]).abs() < 1e-9, "{dtype} product {k}");
                }
            }
            let squares = a.channel_sums(None).unwrap().to_vec::<f64>().unwrap();
            let (_, p) = reference_sums(&a, &a);
            for k in 0..3 {
                assert!((squares[3 + k] - p[k]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn lincomb_is_the_per_channel_affine_map() {
        let mut g = Generator::new(4);
        let cpu = Device::cpu();
        let a = g.randn([2, 3, 5], DType::F32, &cpu).unwrap();
        let b = g.randn([2, 3, 5], DType::F32, &cpu).unwrap();
        let coef = Tensor::from_vec(
            vec![1.5, -2.0, 0.5, 0.25, 1.0, -1.0, 0.1, 0.2, -0.3],
            [3, 3],
        )
        .unwrap();
        let out = a
            .channel_lincomb(Some(&b), &coef)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let one = a
            .channel_lincomb(None, &coef)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let (av, bv, k) = (
            a.to_vec::<f32>().unwrap(),
            b.to_vec::<f32>().unwrap(),
            coef.to_vec::<f64>().unwrap(),
        );
        for i in 0..av.len() {
            let ch = (i / 5) % 3;
            let (al, be, ga) = (k[ch] as f32, k[3 + ch] as f32, k[6 + ch] as f32);
            assert_eq!(out[i], av[i] * al + bv[i] * be + ga, "element {i}");
            assert_eq!(one[i], av[i] * al + ga, "element {i}");
        }
    }

    /// The map of a gradient taken back through a ReLU (`channel_lincomb_masked`): the element
    /// itself where the ReLU's output is above 0 (or NaN), else 0 (an infinite element too, as
    /// PyTorch's select gives it); the CPU runs `relu_grad` and the map.
    #[test]
    fn masked_lincomb_maps_the_gradient_through_the_relu() {
        let cpu = Device::cpu();
        let dy =
            Tensor::from_vec(vec![1.5f32, -2.0, f32::INFINITY, 3.0, -1.0, 0.5], [1, 2, 3]).unwrap();
        let y = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, f32::NAN, 2.0, -0.0], [1, 2, 3]).unwrap();
        let b = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 2, 3]).unwrap();
        let coef = Tensor::from_vec(vec![2.0, -1.0, 0.5, 0.25, 0.0, 1.0], [3, 2]).unwrap();
        let out = dy.channel_lincomb_masked(&y, Some(&b), &coef).unwrap();
        let out = out.to_vec::<f32>().unwrap();
        // y <= 0 ? 0 : dy: the infinity where y is 0 gives 0, the NaN output passes dy.
        let masked = [1.5f32, 0.0, 0.0, 3.0, -1.0, 0.0];
        let (alpha, beta, gamma) = ([2.0f32, -1.0], [0.5f32, 0.25], [0.0f32, 1.0]);
        let want: Vec<f32> = masked
            .iter()
            .enumerate()
            .map(|(i, g)| g * alpha[i / 3] + (i + 1) as f32 * beta[i / 3] + gamma[i / 3])
            .collect();
        for (i, (o, w)) in out.iter().zip(want).enumerate() {
            assert_eq!(o.to_bits(), w.to_bits(), "element {i}: {o} {w}");
        }
        let alone = dy.channel_lincomb_masked(&y, None, &coef).unwrap();
        assert_eq!(alone.to_vec::<f32>().unwrap()[0], 1.5 * 2.0 + 0.0);
        let wrong = Tensor::zeros([1, 2, 2], DType::F32, &cpu).unwrap();
        assert!(
            dy.channel_lincomb_masked(&wrong, None, &coef).is_err(),
            "a mask of another shape"
        );
        let half = y.to_dtype(DType::F16).unwrap();
        assert!(
            dy.channel_lincomb_masked(&half, None, &coef).is_err(),
            "a mask of another dtype"
        );
    }

    /// The residual form (`channel_lincomb_add_relu`) is the map then `add_relu`, and the
    /// kept-mask form (`relu_grad_channel_lincomb`) gives `relu_grad` and the masked map.
    #[test]
    fn residual_and_kept_mask_forms_are_their_ops() {
        let mut g = Generator::new(6);
        let cpu = Device::cpu();
        let [a, r, y] = [0, 1, 2].map(|_| g.randn([2, 3, 4], DType::F32, &cpu).unwrap());
        let coef = g.randn([3, 3], DType::F64, &cpu).unwrap();
        let vals = |t: &Tensor| t.to_vec::<f32>().unwrap();
        let map = a.channel_lincomb(None, &coef).unwrap();
        let sum = a.channel_lincomb_add_relu(&r, &coef).unwrap();
        assert_eq!(vals(&sum), vals(&map.add_relu(&r).unwrap()));
        assert!(vals(&sum).contains(&0.0) && vals(&sum).iter().any(|&v| v > 0.0));
        let y = y.relu().unwrap();
        let (masked, out) = a.relu_grad_channel_lincomb(&y, Some(&r), &coef).unwrap();
        let want_masked = a.relu_grad(&y).unwrap();
        assert_eq!(vals(&masked), vals(&want_masked));
        let want = want_masked.channel_lincomb(Some(&r), &coef).unwrap();
        assert_eq!(vals(&out), vals(&want));
        let short = Tensor::zeros([2, 3, 3], DType::F32, &cpu).unwrap();
        assert!(a.channel_lincomb_add_relu(&short, &coef).is_err());
    }

    #[test]
    fn bad_operands_are_errors() {
        let cpu = Device::cpu();
        let x = Tensor::zeros([2, 3, 4], DType::F32, &cpu).unwrap();
        let flat = Tensor::zeros([6], DType::F32, &cpu).unwrap();
        assert!(flat.channel_sums(None).is_err());
        let other = Tensor::zeros([2, 3, 5], DType::F32, &cpu).unwrap();
        assert!(x.channel_sums(Some(&other)).is_err());
        let ints = Tensor::zeros([2, 3], DType::I64, &cpu).unwrap();
        assert!(ints.channel_sums(None).is_err());
        let coef = Tensor::zeros([3, 4], DType::F64, &cpu).unwrap();
        assert!(
            x.channel_lincomb(None, &coef).is_err(),
            "wrong channel count"
        );
        let f32_coef = Tensor::zeros([3, 3], DType::F32, &cpu).unwrap();
        assert!(
            x.channel_lincomb(None, &f32_coef).is_err(),
            "coefficients must be f64"
        );
        let tracked = x.clone().requires_grad_();
        assert!(tracked.channel_sums(None).is_err(), "not differentiable");
        let half = x.to_dtype(DType::F16).unwrap();
        assert!(
            half.channel_sums(Some(&x)).is_err(),
            "operands of one dtype"
        );
    }

    /// f16 and bf16 map in f32, each product and sum rounded to f32, then round once.
    #[test]
    fn half_lincomb_maps_in_f32_and_rounds_once() {
        let mut g = Generator::new(5);
        let cpu = Device::cpu();
        let coef = Tensor::from_vec(
            vec![1.5, -2.0, 0.3, 0.25, 1.0, -1.0, 0.1, 0.2, -0.3],
            [3, 3],
        )
        .unwrap();
        let k = coef.to_vec::<f64>().unwrap();
        for dtype in [DType::F16, DType::BF16] {
            let a = g.randn([2, 3, 5], dtype, &cpu).unwrap();
            let b = g.randn([2, 3, 5], dtype, &cpu).unwrap();
            let out = a.channel_lincomb(Some(&b), &coef).unwrap();
            assert_eq!(out.dtype(), dtype);
            let [out, av, bv] =
                [out, a, b].map(|t| t.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap());
            let round = |v: f32| {
                Tensor::from_vec(vec![v], [1])
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap()[0]
            };
            for i in 0..av.len() {
                let ch = (i / 5) % 3;
                let (al, be, ga) = (k[ch] as f32, k[3 + ch] as f32, k[6 + ch] as f32);
                assert_eq!(
                    out[i],
                    round(av[i] * al + bv[i] * be + ga),
                    "{dtype} element {i}"
                );
            }
        }
    }
}
