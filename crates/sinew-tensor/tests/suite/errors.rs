//! Error messages: shape mismatches name the op and both shapes, dtype and device mismatches
//! name both, index errors name the index and the bound, and backends without a kernel say so.
//! A second "device" (the CPU kernels behind another location) makes device errors testable
//! without a GPU.

use crate::common;

use std::sync::Arc;

use common::*;
use sinew_tensor::backend::{Backend, BackendStorage, BoxedStorage, MatmulSpec};
use sinew_tensor::cpu::{CpuBackend, CpuStorage};
use sinew_tensor::{
    ArgReduceOp, BinaryOp, CmpOp, DType, Device, DeviceLocation, Layout, ReduceOp, Result, Tensor,
    UnaryOp,
};

/// The CPU kernels presented as `cuda:7`, with the index kernels left unimplemented (softmax
/// and index_select fall back to the trait's composite defaults).
#[derive(Debug)]
struct OtherDevice;

impl sinew_tensor::MultiTensorOps for OtherDevice {}
impl sinew_tensor::DeferredOps for OtherDevice {}

impl Backend for OtherDevice {
    fn location(&self) -> DeviceLocation {
        DeviceLocation::Cuda(7)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<BoxedStorage> {
        CpuBackend.full(dtype, len, value)
    }
    fn upload(&self, data: &CpuStorage) -> Result<BoxedStorage> {
        CpuBackend.upload(data)
    }
    fn download(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        CpuBackend.download(src, layout)
    }
    fn copy_strided(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<BoxedStorage> {
        CpuBackend.copy_strided(src, layout)
    }
    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dl: &Layout,
        src: &dyn BackendStorage,
        sl: &Layout,
    ) -> Result<()> {
        CpuBackend.copy_into(dst, dl, src, sl)
    }
    fn cast(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        dtype: DType,
    ) -> Result<BoxedStorage> {
        CpuBackend.cast(src, layout, dtype)
    }
    fn unary(
        &self,
        op: UnaryOp,
        src: &dyn BackendStorage,
        layout: &Layout,
    ) -> Result<BoxedStorage> {
        CpuBackend.unary(op, src, layout)
    }
    fn binary(
        &self,
        op: BinaryOp,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
    ) -> Result<BoxedStorage> {
        CpuBackend.binary(op, a, la, b, lb)
    }
    fn compare(
        &self,
        op: CmpOp,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
    ) -> Result<BoxedStorage> {
        CpuBackend.compare(op, a, la, b, lb)
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
        CpuBackend.where_cond(c, lc, t, lt, f, lf)
    }
    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dims: &[usize],
    ) -> Result<BoxedStorage> {
        CpuBackend.reduce(op, src, layout, dims)
    }
    fn arg_reduce(
        &self,
        op: ArgReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        dim: usize,
    ) -> Result<BoxedStorage> {
        CpuBackend.arg_reduce(op, src, layout, dim)
    }
    fn matmul(
        &self,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
        spec: &MatmulSpec<'_>,
    ) -> Result<BoxedStorage> {
        CpuBackend.matmul(a, la, b, lb, spec)
    }
}

fn other() -> Device {
    Device::from_backend(Arc::new(OtherDevice))
}

#[test]
fn device_mismatches_name_both_devices() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let b = a.to_device(&other()).unwrap();
    assert_eq!(b.device().location(), DeviceLocation::Cuda(7));
    let msg = "add: device mismatch between cpu and cuda:7 (move one with to_device first)";
    assert_eq!(a.add(&b).unwrap_err().to_string(), msg);
    assert!(
        a.matmul(&b)
            .unwrap_err()
            .to_string()
            .starts_with("matmul: device mismatch between cpu and cuda:7")
    );
    assert!(
        Tensor::cat(&[a.clone(), b.clone()], 0)
            .unwrap_err()
            .to_string()
            .starts_with("cat: device mismatch")
    );
    assert!(
        a.copy_(&b)
            .unwrap_err()
            .to_string()
            .starts_with("copy_: device mismatch")
    );
    // Round trip back to the host keeps the values; ops on one device work.
    assert_eq!(
        b.mul(&b)
            .unwrap()
            .to_device(&Device::cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1.0, 4.0]
    );
    assert_eq!(b.to_string(), "tensor([1., 2.], device='cuda:7')");
}

#[test]
fn missing_kernels_name_the_op_and_device() {
    let b = f32s(&[1.0, 2.0], &[2]).to_device(&other()).unwrap();
    // softmax has a composite default; index_select's default needs gather, which is missing.
    assert_eq!(
        b.softmax(0).unwrap().to_vec::<f32>().unwrap(),
        f32s(&[1.0, 2.0], &[2])
            .softmax(0)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    );
    let idx = Tensor::from_vec_on(vec![0i64], [1], &other()).unwrap();
    assert_eq!(
        b.index_select(0, &idx).unwrap_err().to_string(),
        "gather: not implemented on cuda:7"
    );
    // No CUDA backend is registered in this test binary.
    assert!(
        Device::cuda(0)
            .unwrap_err()
            .to_string()
            .starts_with("no backend registered for cuda devices")
    );
}

#[test]
fn shape_and_dtype_mismatches() {
    let a = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
    let i = Tensor::zeros([2, 3], DType::I64, &Device::cpu()).unwrap();
    assert_eq!(
        a.add(&i).unwrap_err().to_string(),
        "add: dtype mismatch between F32 and I64"
    );
    assert_eq!(
        a.matmul(&a).unwrap_err().to_string(),
        "matmul: shape mismatch between [2, 3] and [2, 3]"
    );
    assert_eq!(
        a.reshape([4]).unwrap_err().to_string(),
        "reshape: shape mismatch between [2, 3] and [4]"
    );
    assert_eq!(
        a.broadcast_to([3, 3]).unwrap_err().to_string(),
        "broadcast_to: shape mismatch between [2, 3] and [3, 3]"
    );
    let c = Tensor::cat(
        &[
            a.clone(),
            Tensor::zeros([2, 4], DType::F32, &Device::cpu()).unwrap(),
        ],
        0,
    );
    assert_eq!(
        c.unwrap_err().to_string(),
        "cat: shape mismatch between [2, 3] and [2, 4]"
    );
    assert_eq!(
        a.sum(&[2], false).unwrap_err().to_string(),
        "sum: dimension 2 out of range for a tensor of rank 2"
    );
    assert_eq!(
        a.softmax(-3).unwrap_err().to_string(),
        "softmax: dimension -3 out of range for a tensor of rank 2"
    );
    assert_eq!(
        i.exp().unwrap_err().to_string(),
        "exp: unsupported dtype I64"
    );
    assert_eq!(
        i.mean_all().unwrap_err().to_string(),
        "mean: unsupported dtype I64"
    );
    assert_eq!(
        a.to_vec::<f64>().unwrap_err().to_string(),
        "to_vec: dtype mismatch between F32 and F64"
    );
    assert_eq!(
        a.to_scalar::<f32>().unwrap_err().to_string(),
        "to_scalar: tensor of shape [2, 3] has 6 elements, not 1"
    );
    assert_eq!(
        a.permute(&[0, 0]).unwrap_err().to_string(),
        "permute: [0, 0] is not a permutation of the 2 dims of [2, 3]"
    );
    assert_eq!(
        a.narrow(1, 2, 2).unwrap_err().to_string(),
        "narrow: range start 2, len 2, step 1 out of bounds for dim 1 of size 3"
    );
    let cond = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
    assert!(
        cond.where_cond(&a, &a)
            .unwrap_err()
            .to_string()
            .contains("condition must be bool")
    );
}

#[test]
fn index_errors_name_the_index_and_the_bound() {
    let x = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
    let bad = i64s(&[0, 5], &[2]);
    assert_eq!(
        x.index_select(1, &bad).unwrap_err().to_string(),
        "index_select: index 5 out of bounds for size 3"
    );
    let neg = i64s(&[-1, 0], &[2, 1]);
    assert_eq!(
        x.gather(1, &neg).unwrap_err().to_string(),
        "gather: index -1 out of bounds for size 3"
    );
    let v = Tensor::ones([2, 1], DType::F32, &Device::cpu()).unwrap();
    assert_eq!(
        x.scatter(0, &i64s(&[2, 0], &[2, 1]), &v)
            .unwrap_err()
            .to_string(),
        "scatter: index 2 out of bounds for size 2"
    );
    assert_eq!(
        i64s(&[1, 4], &[2]).one_hot(4).unwrap_err().to_string(),
        "one_hot: index 4 out of bounds for size 4"
    );
    // Index tensors must be i64, and gather's index may not exceed the source outside `dim`.
    assert_eq!(
        x.index_select(0, &f32s(&[0.0], &[1]))
            .unwrap_err()
            .to_string(),
        "index_select: unsupported dtype F32"
    );
    assert_eq!(
        x.gather(1, &i64s(&[0, 0, 0], &[3, 1]))
            .unwrap_err()
            .to_string(),
        "gather: shape mismatch between [2, 3] and [3, 1]"
    );
}

#[test]
fn invalid_arguments_say_what_is_wrong() {
    let x = Tensor::zeros([1, 1, 4, 4], DType::F32, &Device::cpu()).unwrap();
    let w = Tensor::zeros([1, 1, 5, 5], DType::F32, &Device::cpu()).unwrap();
    let err = x
        .conv2d(&w, None, Default::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "conv2d: window (5, 5) (dilation (1, 1), padding (0, 0)) is larger than the input 4x4"
    );
    assert!(
        x.clamp(1.0, 0.0)
            .unwrap_err()
            .to_string()
            .contains("min 1 is greater than max 0")
    );
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32, &Device::cpu()).is_err());
    assert!(x.split(0, 0).is_err());
    assert!(x.chunk(0, 0).is_err());
    assert!(
        x.pad(&[(4, 0)], sinew_tensor::PadMode::Reflect)
            .unwrap_err()
            .to_string()
            .contains("must be below the size 4")
    );
    assert!(x.norm(-1.0, &[], false).is_err());
    assert!(x.norm(f64::NAN, &[], false).is_err());
}
