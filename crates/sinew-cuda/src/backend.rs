//! `impl Backend for CudaBackend`: sinew-tensor's interface, forwarded to the kernel families.
//! Every method of the trait has a CUDA implementation (its supertraits: `MultiTensorOps` in
//! `backend_multi.rs`, `DeferredOps` in `backend_deferred.rs`).

use sinew_tensor::{
    Activation, ArgReduceOp, Backend, BackendStorage, BinaryOp, BoxedStorage, ChannelNormStep,
    CmpOp, CpuStorage, DType, DeviceLocation, InplaceOp, Layout, MaskedLincomb, MatmulSpec,
    ReduceOp, Result, RunningStorages, ScatterMode, UnaryOp, Unfold2d,
};

use crate::device::CudaBackend;
use crate::ops::channel::Around;
use crate::ops::channel_stats::Extra;
use crate::ops::{
    binary, cast, channel, channel_stats, compare, conv, conv_gemm, conv_wgrad, fused_step, gemm,
    index, inplace, pool, random, reduce, softmax, sorted_sum, unary, xent,
};
use crate::storage::{CudaStorage, cuda, cuda_mut, cuda_view};

impl Backend for CudaBackend {
    fn location(&self) -> DeviceLocation {
        CudaBackend::location(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn synchronize(&self) -> Result<()> {
        self.synchronize_stream()
    }

    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<BoxedStorage> {
        Ok(Box::new(cast::full(self, dtype, len, value)?))
    }

    fn upload(&self, data: &CpuStorage) -> Result<BoxedStorage> {
        Ok(Box::new(cast::upload(self, data)?))
    }

    fn philox_uniform(&self, len: usize, key: u64) -> Result<BoxedStorage> {
        Ok(Box::new(random::philox_uniform(self, len, key)?))
    }

    fn download(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        // The copy waits for the stream and reads the pending index checks in the same wait:
        // an index error queued before it is reported here (see deferred).
        cast::download(self, cuda(src, self.location())?, layout)
    }

    fn copy_strided(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<BoxedStorage> {
        Ok(Box::new(cast::copy_strided(
            self,
            cuda(src, self.location())?,
            layout,
        )?))
    }

    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let loc = self.location();
        cast::copy_into(
            self,
            cuda_mut(dst, loc)?,
            dst_layout,
            cuda(src, loc)?,
            src_layout,
        )
    }

    fn cast(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dtype: DType,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(cast::cast(
            self,
            cuda(src, self.location())?,
            layout,
            dtype,
        )?))
    }

    fn unary(
        &self,
        op: UnaryOp,
        src: &dyn BackendStorage,
        layout: &Layout,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(unary::unary(
            self,
            op,
            cuda(src, self.location())?,
            layout,
        )?))
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(binary::binary(
            self,
            op,
            cuda(lhs, loc)?,
            lhs_layout,
            cuda(rhs, loc)?,
            rhs_layout,
        )?))
    }

    fn relu_backward(
        &self,
        grad: &dyn BackendStorage,
        grad_layout: &Layout,
        output: &dyn BackendStorage,
        output_layout: &Layout,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(binary::relu_backward(
            self,
            cuda(grad, loc)?,
            grad_layout,
            cuda(output, loc)?,
            output_layout,
        )?))
    }

    fn add_relu(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(binary::add_relu(
            self,
            cuda(lhs, loc)?,
            lhs_layout,
            cuda(rhs, loc)?,
            rhs_layout,
        )?))
    }

    fn compare(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(compare::compare(
            self,
            op,
            cuda(lhs, loc)?,
            lhs_layout,
            cuda(rhs, loc)?,
            rhs_layout,
        )?))
    }

    fn where_cond(
        &self,
        cond: &dyn BackendStorage,
        cond_layout: &Layout,
        on_true: &dyn BackendStorage,
        true_layout: &Layout,
        on_false: &dyn BackendStorage,
        false_layout: &Layout,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(compare::where_cond(
            self,
            (cuda(cond, loc)?, cond_layout),
            (cuda(on_true, loc)?, true_layout),
            (cuda(on_false, loc)?, false_layout),
        )?))
    }

    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        Ok(Box::new(reduce::reduce(
            self,
            op,
            cuda(src, self.location())?,
            layout,
            dims,
        )?))
    }

    fn reduce_widened(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<Option<BoxedStorage>> {
        let src = cuda(src, self.location())?;
        let out = reduce::reduce_widened(self, op, src, layout, dims)?;
        Ok(out.map(|s| Box::new(s) as BoxedStorage))
    }

    fn mean(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        let src = cuda(src, self.location())?;
        Ok(Box::new(reduce::mean(self, src, layout, dims)?))
    }

    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(reduce::arg_reduce(
            self,
            op,
            cuda(src, self.location())?,
            layout,
            dim,
        )?))
    }

    fn softmax(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
        log: bool,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(softmax::softmax(
            self,
            cuda(src, self.location())?,
            layout,
            dim,
            log,
        )?))
    }

    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
        spec: &MatmulSpec<'_>,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        let bias = match spec.bias {
            Some((storage, layout)) => Some((cuda(storage, loc)?, layout)),
            None => None,
        };
        Ok(Box::new(gemm::matmul(
            self,
            cuda(lhs, loc)?,
            lhs_layout,
            cuda(rhs, loc)?,
            rhs_layout,
            &gemm::Epilogue::of(spec, bias),
        )?))
    }

    fn amp_unscale(
        &self,
        grad: &mut dyn BackendStorage,
        grad_layout: &Layout,
        found: (&mut dyn BackendStorage, usize),
        inv_scale: f64,
    ) -> Result<()> {
        fused_step::amp_unscale(self, grad, grad_layout, found, inv_scale)
    }

    fn inplace(
        &self,
        op: InplaceOp,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        srcs: &[(&dyn BackendStorage, &Layout)],
    ) -> Result<()> {
        let loc = self.location();
        if srcs.len() > 2 {
            return Err(sinew_tensor::Error::invalid(
                "inplace",
                format!("{} source views (at most 2)", srcs.len()),
            ));
        }
        // The sources as CUDA storages, on the stack (no allocation).
        let view = |i: usize| -> Result<Option<(&CudaStorage, &Layout)>> {
            srcs.get(i)
                .map(|&(storage, layout)| Ok((cuda(storage, loc)?, layout)))
                .transpose()
        };
        let list;
        let srcs: &[(&CudaStorage, &Layout)] = match (view(0)?, view(1)?) {
            (Some(a), Some(b)) => {
                list = [a, b];
                &list
            }
            (Some(a), None) => {
                list = [a, a];
                &list[..1]
            }
            _ => &[],
        };
        inplace::inplace(self, op, cuda_mut(dst, loc)?, dst_layout, srcs)
    }

    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        indices: &dyn BackendStorage,
        indices_layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(index::index_select(
            self,
            cuda(src, loc)?,
            layout,
            cuda(indices, loc)?,
            indices_layout,
            dim,
        )?))
    }

    fn index_select_backward(
        &self,
        grad: (&dyn BackendStorage, &Layout),
        indices: (&dyn BackendStorage, &Layout),
        dim: usize,
        input_dims: &[usize],
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let out = sorted_sum::index_select_backward(
            self,
            (cuda(grad.0, loc)?, grad.1),
            (cuda(indices.0, loc)?, indices.1),
            dim,
            input_dims,
        )?;
        Ok(out.map(|s| Box::new(s) as BoxedStorage))
    }

    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        index: &dyn BackendStorage,
        index_layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(index::gather(
            self,
            cuda(src, loc)?,
            layout,
            cuda(index, loc)?,
            index_layout,
            dim,
        )?))
    }

    fn scatter(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        index: &dyn BackendStorage,
        index_layout: &Layout,
        values: &dyn BackendStorage,
        values_layout: &Layout,
        dim: usize,
        mode: ScatterMode,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(index::scatter(
            self,
            cuda(base, loc)?,
            base_layout,
            cuda(index, loc)?,
            index_layout,
            cuda(values, loc)?,
            values_layout,
            dim,
            mode,
        )?))
    }

    fn channel_sums(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        b: Option<(&dyn BackendStorage, &Layout)>,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        let b = cuda_view(b, loc)?;
        Ok(Box::new(channel::channel_sums(
            self,
            cuda(a, loc)?,
            a_layout,
            b,
        )?))
    }

    fn channel_lincomb(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        b: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        let (b, coef) = (cuda_view(b, loc)?, cuda(coef, loc)?);
        let a = (cuda(a, loc)?, a_layout);
        let (out, _) = channel::channel_lincomb(self, a, [None, b], coef, Around::default())?;
        Ok(Box::new(out))
    }

    fn channel_lincomb_relu(
        &self,
        a: &dyn BackendStorage,
        a_layout: &Layout,
        residual: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let (a, coef) = ((cuda(a, loc)?, a_layout), cuda(coef, loc)?);
        let around = Around {
            relu: true,
            residual: residual.is_some(),
            keep_masked: false,
        };
        let residual = cuda_view(residual, loc)?;
        let (out, _) = channel::channel_lincomb(self, a, [None, residual], coef, around)?;
        Ok(Some(Box::new(out)))
    }

    fn channel_lincomb_masked(
        &self,
        (a, mask): (&dyn BackendStorage, &dyn BackendStorage),
        (a_layout, mask_layout): (&Layout, &Layout),
        b: Option<(&dyn BackendStorage, &Layout)>,
        coef: &dyn BackendStorage,
        keep_masked: bool,
    ) -> Result<Option<MaskedLincomb>> {
        let loc = self.location();
        let b = cuda_view(b, loc)?;
        let (a, mask) = ((cuda(a, loc)?, a_layout), (cuda(mask, loc)?, mask_layout));
        let around = Around {
            keep_masked,
            ..Around::default()
        };
        let coef = cuda(coef, loc)?;
        let (out, masked) = channel::channel_lincomb(self, a, [Some(mask), b], coef, around)?;
        Ok(Some((
            Box::new(out),
            masked.map(|m| Box::new(m) as BoxedStorage),
        )))
    }

    fn channel_norm(
        &self,
        step: ChannelNormStep,
        rows: &[(&dyn BackendStorage, usize)],
        c: usize,
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let Some(&(first, _)) = rows.first() else {
            return Err(sinew_tensor::Error::invalid("channel_norm", "no operands"));
        };
        let mut views: [(&CudaStorage, usize); 5] = [(cuda(first, loc)?, 0); 5];
        if rows.len() > views.len() {
            return Err(sinew_tensor::Error::invalid(
                "channel_norm",
                format!("{} operands", rows.len()),
            ));
        }
        for (view, &(storage, start)) in views.iter_mut().zip(rows) {
            *view = (cuda(storage, loc)?, start);
        }
        let out = channel::channel_norm(self, step, &views[..rows.len()], c)?;
        Ok(Some(Box::new(out)))
    }

    fn channel_norm_of(
        &self,
        a: (&dyn BackendStorage, &Layout),
        b: Option<(&dyn BackendStorage, &Layout)>,
        step: ChannelNormStep,
        rows: &[(&dyn BackendStorage, usize)],
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let b = cuda_view(b, loc)?;
        let views: Vec<(&CudaStorage, usize)> = rows
            .iter()
            .map(|&(s, at)| Ok((cuda(s, loc)?, at)))
            .collect::<Result<_>>()?;
        let a = (cuda(a.0, loc)?, a.1);
        let out = channel_stats::channel_norm_of(self, a, [None, b], step, &views, Extra::None)?;
        Ok(out.map(|(s, _)| Box::new(s) as BoxedStorage))
    }

    fn channel_norm_grads_of(
        &self,
        dy: (&dyn BackendStorage, &Layout),
        mask: Option<(&dyn BackendStorage, &Layout)>,
        x: (&dyn BackendStorage, &Layout),
        count: f64,
        rows: &[(&dyn BackendStorage, usize)],
        params: DType,
    ) -> Result<Option<(BoxedStorage, BoxedStorage)>> {
        if params != DType::F32 {
            return Ok(None);
        }
        let loc = self.location();
        let mask = cuda_view(mask, loc)?;
        let views: Vec<(&CudaStorage, usize)> = rows
            .iter()
            .map(|&(s, at)| Ok((cuda(s, loc)?, at)))
            .collect::<Result<_>>()?;
        let (dy, x) = ((cuda(dy.0, loc)?, dy.1), (cuda(x.0, loc)?, x.1));
        let step = ChannelNormStep::Backward { count };
        let extra = Extra::ParamGrads;
        let operands = [mask, Some(x)];
        let out = channel_stats::channel_norm_of(self, dy, operands, step, &views, extra)?;
        Ok(match out {
            Some((rows, Some(params))) => Some((Box::new(rows), Box::new(params))),
            _ => None,
        })
    }

    fn channel_norm_updating(
        &self,
        a: (&dyn BackendStorage, &Layout),
        (count, eps): (f64, f64),
        rows: &[(&dyn BackendStorage, usize)],
        running: RunningStorages<'_>,
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let views: Vec<(&CudaStorage, usize)> = rows
            .iter()
            .map(|&(s, at)| Ok((cuda(s, loc)?, at)))
            .collect::<Result<_>>()?;
        let [(rm, rm_at), (rv, rv_at)] = running.running;
        // Written by the kernel: borrowed mutably, as every destination is.
        let count_storage = match running.count {
            Some((n, at)) => Some((&*cuda_mut(n, loc)?, at)),
            None => None,
        };
        let target = channel_stats::Running {
            stats: [(&*cuda_mut(rm, loc)?, rm_at), (&*cuda_mut(rv, loc)?, rv_at)],
            count: count_storage,
            scalars: running.scalars,
        };
        let step = ChannelNormStep::Forward { count, eps };
        let a = (cuda(a.0, loc)?, a.1);
        let extra = Extra::Running(target);
        let out = channel_stats::channel_norm_of(self, a, [None, None], step, &views, extra)?;
        Ok(out.map(|(s, _)| Box::new(s) as BoxedStorage))
    }

    fn fuses_running_stats(&self, dtype: DType) -> bool {
        // Both kernels update f32 and f64 buffers (`running_stats_<dtype>` and the update in
        // `channel_stats_<dtype>`); f16 and bf16 ones take the in-place ops.
        crate::names::running_stats(dtype).is_some()
    }

    fn update_running_stats(
        &self,
        running: [(&mut dyn BackendStorage, usize); 2],
        stats: [(&dyn BackendStorage, usize); 2],
        c: usize,
        scalars: (f64, f64),
        count: Option<(&mut dyn BackendStorage, usize)>,
    ) -> Result<bool> {
        let loc = self.location();
        let [(rm, rm_at), (rv, rv_at)] = running;
        // Written by the kernel: borrowed mutably, as every destination is.
        let running = [(&*cuda_mut(rm, loc)?, rm_at), (&*cuda_mut(rv, loc)?, rv_at)];
        let count = match count {
            Some((n, at)) => Some((&*cuda_mut(n, loc)?, at)),
            None => None,
        };
        let [(mean, mean_at), (var, var_at)] = stats;
        let stats = [(cuda(mean, loc)?, mean_at), (cuda(var, loc)?, var_at)];
        channel::update_running_stats(self, running, stats, c, scalars, count)
    }

    fn softmax_xent_forward(
        &self,
        ops: sinew_tensor::XentOperands<'_>,
        options: sinew_tensor::SoftmaxXentOptions,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(xent::forward(self, ops, options)?))
    }

    fn softmax_xent_backward(
        &self,
        ops: sinew_tensor::XentOperands<'_>,
        stats: (&dyn BackendStorage, &Layout),
        grad: (&dyn BackendStorage, &Layout),
        divisor: Option<(&dyn BackendStorage, &Layout)>,
        options: sinew_tensor::SoftmaxXentOptions,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(xent::backward(
            self, ops, stats, grad, divisor, options,
        )?))
    }

    fn unfold2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(conv::unfold2d(
            self,
            cuda(src, self.location())?,
            layout,
            spec,
        )?))
    }

    fn max_pool2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<(BoxedStorage, BoxedStorage)> {
        let (v, i) = pool::max_pool2d(self, cuda(src, self.location())?, layout, spec)?;
        Ok((Box::new(v), Box::new(i)))
    }

    fn max_pool2d_backward(
        &self,
        grad: &dyn BackendStorage,
        grad_layout: &Layout,
        indices: &dyn BackendStorage,
        indices_layout: &Layout,
        spec: &Unfold2d,
        trusted: bool,
    ) -> Result<BoxedStorage> {
        let loc = self.location();
        Ok(Box::new(pool::max_pool2d_backward(
            self,
            (cuda(grad, loc)?, grad_layout),
            (cuda(indices, loc)?, indices_layout),
            spec,
            trusted,
        )?))
    }

    fn avg_pool2d(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
        count_include_pad: bool,
    ) -> Result<Option<BoxedStorage>> {
        let src = cuda(src, self.location())?;
        let out = pool::avg_pool2d(self, src, layout, spec, count_include_pad)?;
        Ok(Some(Box::new(out)))
    }

    fn avg_pool2d_backward(
        &self,
        grad: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
        count_include_pad: bool,
    ) -> Result<Option<BoxedStorage>> {
        let grad = (cuda(grad, self.location())?, layout);
        let out = pool::avg_pool2d_backward(self, grad, spec, count_include_pad)?;
        Ok(Some(Box::new(out)))
    }

    fn conv2d(
        &self,
        x: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let (x, w) = ((cuda(x.0, loc)?, x.1), (cuda(w.0, loc)?, w.1));
        let out = conv_gemm::conv2d(self, x, w, (None, false), spec, groups)?;
        Ok(out.map(|s| Box::new(s) as BoxedStorage))
    }

    fn conv2d_epilogue(
        &self,
        x: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        bias: Option<(&dyn BackendStorage, &Layout)>,
        activation: Option<Activation>,
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let relu = match activation {
            None => false,
            Some(Activation::Relu) => true,
            Some(_) => return Ok(None),
        };
        let loc = self.location();
        let (x, w) = ((cuda(x.0, loc)?, x.1), (cuda(w.0, loc)?, w.1));
        let bias = match bias {
            Some((b, l)) => Some((cuda(b, loc)?, l)),
            None => None,
        };
        let out = conv_gemm::conv2d(self, x, w, (bias, relu), spec, groups)?;
        Ok(out.map(|s| Box::new(s) as BoxedStorage))
    }

    fn conv2d_weight_grad(
        &self,
        x: (&dyn BackendStorage, &Layout),
        grad: (&dyn BackendStorage, &Layout),
        weight: (&[usize], DType),
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let out = conv_wgrad::conv2d_weight_grad(
            self,
            (cuda(x.0, loc)?, x.1),
            (cuda(grad.0, loc)?, grad.1),
            weight,
            spec,
            groups,
        )?;
        Ok(out.map(|s| Box::new(s) as BoxedStorage))
    }

    fn conv2d_input_grad(
        &self,
        grad: (&dyn BackendStorage, &Layout),
        w: (&dyn BackendStorage, &Layout),
        spec: &Unfold2d,
        groups: usize,
        add: Option<(&dyn BackendStorage, &Layout)>,
    ) -> Result<Option<BoxedStorage>> {
        let loc = self.location();
        let add = add.map(|(a, l)| cuda(a, loc).map(|a| (a, l))).transpose()?;
        let out = conv_gemm::conv2d_input_grad(
            self,
            (cuda(grad.0, loc)?, grad.1),
            (cuda(w.0, loc)?, w.1),
            spec,
            groups,
            add,
        )?;
        Ok(out.map(|s| Box::new(s) as BoxedStorage))
    }

    fn fold2d(
        &self,
        cols: &dyn BackendStorage,
        layout: &Layout,
        spec: &Unfold2d,
    ) -> Result<BoxedStorage> {
        Ok(Box::new(conv::fold2d(
            self,
            cuda(cols, self.location())?,
            layout,
            spec,
        )?))
    }
}
