//! The composite default bodies of `Backend` (inplace, softmax, mean, index_select, matmul
//! epilogue) on a minimal backend that forwards only the required methods (plus `gather`) to the
//! CPU backend and reports itself as device `cuda:7`; and custom ops it has no kernel for.

use crate::common;

use std::sync::Arc;

use common::assert_close;
use sinew_tensor::{
    Activation, ArgReduceOp, Backend, BackendStorage, BinaryOp, BoxedStorage, CmpOp, CpuBackend,
    CpuStorage, CustomOp, DType, Device, DeviceLocation, Error, Generator, Layout, MatmulOptions,
    MatmulSpec, ReduceOp, Result, RunningStats, RunningStorages, Shape, Tensor, UnaryOp,
};

#[derive(Debug)]
struct Minimal(CpuBackend);

impl sinew_tensor::MultiTensorOps for Minimal {}
impl sinew_tensor::DeferredOps for Minimal {}

impl Backend for Minimal {
    fn location(&self) -> DeviceLocation {
        DeviceLocation::Cuda(7)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<BoxedStorage> {
        self.0.full(dtype, len, value)
    }
    fn upload(&self, data: &CpuStorage) -> Result<BoxedStorage> {
        self.0.upload(data)
    }
    fn download(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        self.0.download(src, layout)
    }
    fn copy_strided(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<BoxedStorage> {
        self.0.copy_strided(src, layout)
    }
    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dl: &Layout,
        src: &dyn BackendStorage,
        sl: &Layout,
    ) -> Result<()> {
        self.0.copy_into(dst, dl, src, sl)
    }
    fn cast(&self, src: &dyn BackendStorage, l: &Layout, dtype: DType) -> Result<BoxedStorage> {
        self.0.cast(src, l, dtype)
    }
    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, l: &Layout) -> Result<BoxedStorage> {
        self.0.unary(op, src, l)
    }
    fn binary(
        &self,
        op: BinaryOp,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
    ) -> Result<BoxedStorage> {
        self.0.binary(op, a, la, b, lb)
    }
    fn compare(
        &self,
        op: CmpOp,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
    ) -> Result<BoxedStorage> {
        self.0.compare(op, a, la, b, lb)
    }
    fn where_cond(
        &self,
        c: &dyn BackendStorage,
        lc: &Layout,
        t: &dyn BackendStorage,
        lt: &Layout,
        f: &dyn BackendStorage,
        lf: &Layout,
    ) -> Result<BoxedStorage> {
        self.0.where_cond(c, lc, t, lt, f, lf)
    }
    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        l: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        self.0.reduce(op, src, l, dims)
    }
    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        src: &dyn BackendStorage,
        l: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        self.0.arg_reduce(op, src, l, dim)
    }
    /// Plain products only, like a backend without fused epilogues.
    fn matmul(
        &self,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
        spec: &MatmulSpec<'_>,
    ) -> Result<BoxedStorage> {
        if !spec.is_plain() {
            return Err(Error::NotImplemented {
                op: "matmul epilogue",
                device: self.location(),
            });
        }
        self.0.matmul(a, la, b, lb, spec)
    }
    fn gather(
        &self,
        src: &dyn BackendStorage,
        l: &Layout,
        index: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        self.0.gather(src, l, index, il, dim)
    }
    // Batch norm's running-statistics kernels fail when asked: without `fuses_running_stats`
    // (default false) they must not be.
    fn update_running_stats(
        &self,
        _: [(&mut dyn BackendStorage, usize); 2],
        _: [(&dyn BackendStorage, usize); 2],
        _: usize,
        _: (f64, f64),
        _: Option<(&mut dyn BackendStorage, usize)>,
    ) -> Result<bool> {
        Err(Error::invalid("update_running_stats", ASKED))
    }
    fn channel_norm_updating(
        &self,
        _: (&dyn BackendStorage, &Layout),
        _: (f64, f64),
        _: &[(&dyn BackendStorage, usize)],
        _: RunningStorages<'_>,
    ) -> Result<Option<BoxedStorage>> {
        Err(Error::invalid("channel_norm_updating", ASKED))
    }
}

/// What [`Minimal`]'s running-statistics kernels say when asked.
const ASKED: &str = "asked for a kernel it does not have";

fn minimal() -> Device {
    Device::from_backend(Arc::new(Minimal(CpuBackend)))
}

fn pair(g: &mut Generator, dims: &[usize], lo: f64) -> (Tensor, Tensor) {
    let cpu = g
        .uniform(dims.to_vec(), lo, 2.0, DType::F32, &Device::cpu())
        .unwrap();
    let other = cpu.to_device(&minimal()).unwrap();
    (cpu, other)
}

#[test]
fn composite_inplace_matches_the_cpu_kernels() {
    let mut g = Generator::new(11);
    type Op = fn(&Tensor, &Tensor, &Tensor) -> Result<()>;
    let ops: [(&str, Op); 13] = [
        ("add_", |d, s, _| d.add_(s)),
        ("div_", |d, s, _| d.div_(s)),
        ("mul_scalar_", |d, _, _| d.mul_scalar_(0.9)),
        ("axpy_", |d, s, _| d.axpy_(-0.5, s)),
        ("addcmul_", |d, s, t| d.addcmul_(0.3, s, t)),
        ("addcdiv_", |d, s, t| d.addcdiv_(0.3, s, t)),
        ("lerp_", |d, s, _| d.lerp_(s, 0.25)),
        ("clamp_", |d, _, _| d.clamp_(0.0, 1.0)),
        ("fill_", |d, _, _| d.fill_(2.5)),
        ("mul_axpy_", |d, s, _| d.mul_axpy_(0.9, -0.5, s)),
        ("mul_max_abs_", |d, s, _| d.mul_max_abs_(0.9, 0.25, s)),
        ("mul_addcmul_", |d, s, t| d.mul_addcmul_(0.99, 0.01, s, t)),
        ("addcdiv_sqrt_", |d, s, t| {
            d.addcdiv_sqrt_(-0.1, s, t, 2.0, 1e-3)
        }),
    ];
    for (name, op) in ops {
        let (dc, dm) = pair(&mut g, &[6, 5], -1.0);
        let (sc, sm) = pair(&mut g, &[5], 0.5);
        let (tc, tm) = pair(&mut g, &[6, 1], 0.5);
        // Destination: a transposed view of a [5, 6] tensor.
        let (dc, dm) = (
            dc.reshape([5, 6]).unwrap().t().unwrap(),
            dm.reshape([5, 6]).unwrap().t().unwrap(),
        );
        op(&dc, &sc, &tc).unwrap();
        op(&dm, &sm, &tm).unwrap();
        assert_eq!(dm.version(), 1, "{name}");
        assert_close(
            &dm.to_vec_f64().unwrap(),
            &dc.to_vec_f64().unwrap(),
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn composite_softmax_and_index_select() {
    let mut g = Generator::new(12);
    let (xc, xm) = pair(&mut g, &[3, 4, 5], -3.0);
    for dim in [0, 1, 2] {
        let (c, m) = (xc.softmax(dim).unwrap(), xm.softmax(dim).unwrap());
        assert_eq!(m.device().location(), DeviceLocation::Cuda(7));
        assert_close(
            &m.to_vec_f64().unwrap(),
            &c.to_vec_f64().unwrap(),
            1e-6,
            1e-7,
        );
        let (c, m) = (xc.log_softmax(dim).unwrap(), xm.log_softmax(dim).unwrap());
        assert_close(
            &m.to_vec_f64().unwrap(),
            &c.to_vec_f64().unwrap(),
            1e-6,
            1e-6,
        );
    }
    let idx_c = Tensor::from_vec(vec![3i64, 0, 3, 1], [4]).unwrap();
    let idx_m = idx_c.to_device(&minimal()).unwrap();
    for dim in [0isize, 1, 2] {
        let ids = idx_m.narrow(0, 0, if dim == 0 { 2 } else { 4 }).unwrap();
        let ids_c = idx_c.narrow(0, 0, ids.elem_count()).unwrap();
        let ids = if dim == 0 {
            ids.clamp(0.0, 2.0).unwrap()
        } else {
            ids
        };
        let ids_c = if dim == 0 {
            ids_c.clamp(0.0, 2.0).unwrap()
        } else {
            ids_c
        };
        let (c, m) = (
            xc.index_select(dim, &ids_c).unwrap(),
            xm.index_select(dim, &ids).unwrap(),
        );
        assert_eq!(m.dims(), c.dims());
        assert_eq!(m.to_vec::<f32>().unwrap(), c.to_vec::<f32>().unwrap());
    }
    let out_of_range = Tensor::from_vec(vec![9i64], [1])
        .unwrap()
        .to_device(&minimal())
        .unwrap();
    assert!(matches!(
        xm.index_select(1, &out_of_range),
        Err(Error::IndexOutOfBounds { .. })
    ));
}

#[test]
fn composite_mean_matches_the_cpu_kernel_and_divides_before_rounding() {
    let mut g = Generator::new(13);
    let (xc, xm) = pair(&mut g, &[3, 4, 5], -3.0);
    for dims in [&[0isize][..], &[1], &[0, 2], &[]] {
        let (c, m) = (xc.mean(dims, false).unwrap(), xm.mean(dims, false).unwrap());
        assert_eq!(m.dims(), c.dims());
        assert_close(
            &m.to_vec_f64().unwrap(),
            &c.to_vec_f64().unwrap(),
            1e-6,
            1e-7,
        );
    }
    // An f16 mean whose f16 sum overflows: torch.full((4, 6), 60000., dtype=torch.half).mean(1)
    let big = Tensor::full([4, 6], 60000.0, DType::F16, &minimal()).unwrap();
    let mean = big.mean(&[1], false).unwrap();
    assert_eq!(mean.dtype(), DType::F16);
    assert_eq!(mean.to_vec_f64().unwrap(), [60000.0; 4]);
}

#[test]
fn unfused_matmul_epilogue_matches_the_fused_cpu_one() {
    let mut g = Generator::new(13);
    let (ac, am) = pair(&mut g, &[2, 7, 9], -1.0);
    let (bc, bm) = pair(&mut g, &[9, 5], -1.0);
    let bias_c = g
        .uniform(vec![5], -1.0, 1.0, DType::F64, &Device::cpu())
        .unwrap();
    let bias_m = bias_c.to_device(&minimal()).unwrap();
    let opts = |b| {
        MatmulOptions::new()
            .with_out_dtype(DType::F64)
            .with_bias(b)
            .with_activation(Activation::Relu)
    };
    let c = ac.matmul_with(&bc, opts(&bias_c)).unwrap();
    let m = am.matmul_with(&bm, opts(&bias_m)).unwrap();
    assert_eq!((m.dims(), m.dtype()), (c.dims(), DType::F64));
    assert_close(
        &m.to_vec_f64().unwrap(),
        &c.to_vec_f64().unwrap(),
        1e-12,
        1e-12,
    );
    assert!(
        m.to_vec_f64().unwrap().contains(&0.0),
        "ReLU clipped something"
    );
}

#[test]
fn operands_on_another_device_are_refused() {
    let cpu = Tensor::zeros([3], DType::F32, &Device::cpu()).unwrap();
    let other = Tensor::zeros([3], DType::F32, &minimal()).unwrap();
    assert_eq!(
        cpu.add_(&other).unwrap_err(),
        Error::DeviceMismatch {
            op: "add_",
            lhs: DeviceLocation::Cpu,
            rhs: DeviceLocation::Cuda(7)
        }
    );
}

struct Double;

impl CustomOp for Double {
    fn name(&self) -> &'static str {
        "double"
    }
    fn cpu_fwd(&self, inputs: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let (s, l) = inputs[0];
        let v: Vec<f64> = l.offsets().map(|o| s.to_f64_vec()[o] * 2.0).collect();
        Ok((CpuStorage::F64(v), l.shape().clone()))
    }
}

#[test]
fn a_custom_op_without_a_kernel_for_the_device_names_op_and_device() {
    let x = Tensor::ones([2], DType::F64, &minimal()).unwrap();
    let err = Tensor::apply_op(&[&x], &Double).unwrap_err();
    assert_eq!(err.to_string(), "double: not implemented on cuda:7");
}

/// A backend without running-statistics kernels (`fuses_running_stats` false) is not asked for
/// them, its buffers not locked for them: the update runs as in-place ops, with the CPU's
/// values, and the one-kernel forward falls back to its two steps.
#[test]
fn running_statistics_without_kernels_run_as_in_place_ops() {
    let mut g = Generator::new(3);
    let (mean_cpu, mean) = pair(&mut g, &[4], -1.0);
    let (var_cpu, var) = pair(&mut g, &[4], 0.5);
    let (stats_cpu, stats) = pair(&mut g, &[2, 4], 0.5);
    let stats_cpu = stats_cpu.to_dtype(DType::F64).unwrap();
    let stats = stats.to_dtype(DType::F64).unwrap();
    let row = |t: &Tensor, k: usize| t.narrow(0, k, 1).unwrap().reshape([4]).unwrap();
    let scalars = (0.1, 1.25);
    Tensor::update_running_stats_(
        &mean_cpu,
        &var_cpu,
        &row(&stats_cpu, 0),
        &row(&stats_cpu, 1),
        scalars,
        None,
    )
    .unwrap();
    Tensor::update_running_stats_(&mean, &var, &row(&stats, 0), &row(&stats, 1), scalars, None)
        .unwrap();
    assert_eq!(
        mean.to_vec::<f32>().unwrap(),
        mean_cpu.to_vec::<f32>().unwrap()
    );
    assert_eq!(
        var.to_vec::<f32>().unwrap(),
        var_cpu.to_vec::<f32>().unwrap()
    );
    let (_, x) = pair(&mut g, &[3, 4, 5], -1.0);
    let step = sinew_tensor::ChannelNormStep::Forward {
        count: 15.0,
        eps: 1e-5,
    };
    let running = RunningStats {
        mean: &mean,
        var: &var,
        count: None,
        momentum: 0.1,
        unbias: 15.0 / 14.0,
    };
    // Its per-channel step has no kernel either: the fallback's error, not the kernel's.
    let err = x.channel_norm_updating(step, &[], running).unwrap_err();
    assert!(!err.to_string().contains(ASKED), "{err}");
}
