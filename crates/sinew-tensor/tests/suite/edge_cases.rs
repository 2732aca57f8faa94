//! Edge cases across the op families: empty tensors, 0-d tensors, size-1 dims and
//! non-contiguous inputs. Expected values come from PyTorch (snippet in each comment).

use crate::common;

use common::*;
use sinew_tensor::{Conv2dConfig, DType, Device, PadMode, Pool2dConfig, Tensor};

fn cpu() -> Device {
    Device::cpu()
}

fn zeros(dims: &[usize]) -> Tensor {
    Tensor::zeros(dims, DType::F32, &cpu()).unwrap()
}

#[test]
fn empty_tensors_flow_through_every_family() {
    let e = zeros(&[0, 3]);
    assert_eq!(e.exp().unwrap().dims(), &[0, 3]);
    // torch.zeros(0, 3) + torch.ones(3) has shape [0, 3]
    assert_eq!(
        e.add(&Tensor::ones([3], DType::F32, &cpu()).unwrap())
            .unwrap()
            .dims(),
        &[0, 3]
    );
    assert_eq!(e.lt_scalar(0.0).unwrap().dims(), &[0, 3]);
    assert_eq!(
        e.gt_scalar(0.0)
            .unwrap()
            .where_cond(&e, &Tensor::scalar(1.0f32))
            .unwrap()
            .dims(),
        &[0, 3]
    );
    // torch.zeros(0, 3).sum(0) = [0, 0, 0]; .prod(0) = [1, 1, 1]; .mean(0) = [nan, nan, nan]
    assert_tensor(&e.sum(&[0], false).unwrap(), &[3], &[0.0; 3], 0.0, 0.0);
    assert_tensor(&e.prod(&[0], false).unwrap(), &[3], &[1.0; 3], 0.0, 0.0);
    assert_tensor(
        &e.mean(&[0], false).unwrap(),
        &[3],
        &[f64::NAN; 3],
        0.0,
        0.0,
    );
    // torch.zeros(0, 3).sum(1) has shape [0]; .amax(1) too (the reduced dim is not empty).
    assert_eq!(e.sum(&[1], false).unwrap().dims(), &[0]);
    assert_eq!(e.max(&[1], false).unwrap().dims(), &[0]);
    assert_eq!(e.argmax(1, false).unwrap().dims(), &[0]);
    assert_eq!(e.softmax(0).unwrap().dims(), &[0, 3]);
    assert_eq!(e.log_softmax(1).unwrap().dims(), &[0, 3]);
    // torch.zeros(2, 0).logsumexp(1) = [-inf, -inf]
    assert_tensor(
        &zeros(&[2, 0]).logsumexp(&[1], false).unwrap(),
        &[2],
        &[f64::NEG_INFINITY; 2],
        0.0,
        0.0,
    );
    assert_eq!(e.matmul(&zeros(&[3, 4])).unwrap().dims(), &[0, 4]);
    assert_eq!(e.t().unwrap().contiguous().unwrap().dims(), &[3, 0]);
}

#[test]
fn empty_tensors_in_index_ops() {
    let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &cpu())
        .unwrap()
        .reshape([2, 3])
        .unwrap();
    // torch.cat([x, torch.zeros(0, 3)]) == x
    let c = Tensor::cat(&[x.clone(), zeros(&[0, 3])], 0).unwrap();
    assert_eq!(c.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    assert_eq!(
        Tensor::stack(&[zeros(&[0]), zeros(&[0])], 0)
            .unwrap()
            .dims(),
        &[2, 0]
    );
    let none = Tensor::from_vec(Vec::<i64>::new(), [0]).unwrap();
    assert_eq!(x.index_select(1, &none).unwrap().dims(), &[2, 0]);
    let idx = Tensor::from_vec(Vec::<i64>::new(), [2, 0]).unwrap();
    assert_eq!(x.gather(1, &idx).unwrap().dims(), &[2, 0]);
    assert_eq!(
        x.scatter_add(1, &idx, &zeros(&[2, 0]))
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        x.to_vec::<f32>().unwrap()
    );
    assert_eq!(none.one_hot(4).unwrap().dims(), &[0, 4]);
    assert_eq!(
        zeros(&[0, 2])
            .pad(&[(1, 1)], PadMode::Constant(5.0))
            .unwrap()
            .dims(),
        &[0, 4]
    );
    // A zero-length narrow at the very end of a view that starts mid-storage.
    let tail = x.narrow(1, 1, 2).unwrap().narrow(0, 2, 0).unwrap();
    assert_eq!(tail.dims(), &[0, 2]);
    assert_eq!(
        tail.exp().unwrap().to_vec::<f32>().unwrap(),
        Vec::<f32>::new()
    );
    assert_eq!(tail.add(&tail).unwrap().dims(), &[0, 2]);
    assert_eq!(tail.sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    tail.copy_(&zeros(&[0, 2])).unwrap();
    // A batch of zero images.
    let conv = zeros(&[0, 2, 5, 5])
        .conv2d(&zeros(&[3, 2, 3, 3]), None, Conv2dConfig::default())
        .unwrap();
    assert_eq!(conv.dims(), &[0, 3, 3, 3]);
    let (v, i) = zeros(&[0, 2, 4, 4])
        .max_pool2d(Pool2dConfig::new(2))
        .unwrap();
    assert_eq!(
        (v.dims(), i.dims()),
        (&[0usize, 2, 2, 2][..], &[0usize, 2, 2, 2][..])
    );
}

#[test]
fn zero_dim_tensors() {
    let s = Tensor::scalar(3.0f32);
    assert_eq!(s.rank(), 0);
    assert_eq!(s.elem_count(), 1);
    // torch.tensor(3.) * torch.tensor([1., 2.]) = [3., 6.]
    assert_tensor(
        &s.mul(&f32s(&[1.0, 2.0], &[2])).unwrap(),
        &[2],
        &[3.0, 6.0],
        0.0,
        0.0,
    );
    assert_eq!(s.neg().unwrap().to_scalar::<f32>().unwrap(), -3.0);
    // x = torch.tensor(3.): x.sum(0) = 3., x.sum(-1, keepdim=True) = 3. (0-d), x.argmax(0) = 0,
    // x.softmax(0) = 1., x.logsumexp(0) = 3., x.mean(0) = 3.
    assert_tensor(&s.sum(&[0], false).unwrap(), &[], &[3.0], 0.0, 0.0);
    assert_tensor(&s.sum(&[-1], true).unwrap(), &[], &[3.0], 0.0, 0.0);
    assert_eq!(s.argmax(0, false).unwrap().to_scalar::<i64>().unwrap(), 0);
    assert_tensor(&s.softmax(0).unwrap(), &[], &[1.0], 0.0, 0.0);
    assert_tensor(&s.logsumexp(&[0], false).unwrap(), &[], &[3.0], 0.0, 0.0);
    assert_tensor(&s.mean(&[0], false).unwrap(), &[], &[3.0], 0.0, 0.0);
    assert!(s.sum(&[1], false).is_err());
    assert_eq!(s.sum_all().unwrap().item().unwrap(), 3.0);
    assert_eq!(s.unsqueeze(0).unwrap().dims(), &[1]);
    assert_eq!(s.reshape([1, 1]).unwrap().dims(), &[1, 1]);
    assert_eq!(s.flatten_all().unwrap().dims(), &[1]);
    // torch.flatten(torch.tensor(3.), 0, -1).shape == [1]; with start 1 (nn.Flatten's):
    // "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
    assert_eq!(s.flatten(0, -1).unwrap().dims(), &[1]);
    assert_eq!(s.flatten(-1, 0).unwrap().dims(), &[1]);
    assert!(s.flatten(1, -1).is_err());
    assert_eq!(
        s.expand([2, 2]).unwrap().to_vec::<f32>().unwrap(),
        vec![3.0; 4]
    );
    assert!(s.t().is_err());
    assert_eq!(s.to_string(), "tensor(3.)");
}

#[test]
fn size_one_dims() {
    let x = f32s(&[1.0, 2.0, 3.0], &[1, 3, 1]);
    assert_tensor(
        &x.sum(&[0, 2], false).unwrap(),
        &[3],
        &[1.0, 2.0, 3.0],
        0.0,
        0.0,
    );
    assert_tensor(&x.max(&[1], true).unwrap(), &[1, 1, 1], &[3.0], 0.0, 0.0);
    assert_eq!(
        x.argmax(2, false).unwrap().to_vec::<i64>().unwrap(),
        vec![0, 0, 0]
    );
    assert_tensor(&x.softmax(2).unwrap(), &[1, 3, 1], &[1.0; 3], 0.0, 0.0);
    // torch.ones(1, 3, 1) + torch.ones(2, 1, 4) has shape [2, 3, 4]
    let y = Tensor::ones([2, 1, 4], DType::F32, &cpu()).unwrap();
    assert_eq!(x.add(&y).unwrap().dims(), &[2, 3, 4]);
    assert_eq!(x.squeeze_all().unwrap().dims(), &[3]);
    assert!(x.squeeze(0).unwrap().same_storage(&x));
    let one = f32s(&[2.0], &[1, 1]);
    assert_tensor(&one.matmul(&one).unwrap(), &[1, 1], &[4.0], 0.0, 0.0);
    assert!(x.permute(&[2, 1, 0]).unwrap().is_contiguous());
}

#[test]
fn non_contiguous_inputs_to_index_and_conv_ops() {
    // x = torch.arange(12.).reshape(3, 4).T  (shape [4, 3], strides [1, 4])
    let x = Tensor::arange(0.0, 12.0, 1.0, DType::F32, &cpu())
        .unwrap()
        .reshape([3, 4])
        .unwrap()
        .t()
        .unwrap();
    assert!(!x.is_contiguous());
    // x.index_select(0, torch.tensor([3, 0])) = [[3, 7, 11], [0, 4, 8]]
    let idx = i64s(&[3, 0], &[2]);
    assert_tensor(
        &x.index_select(0, &idx).unwrap(),
        &[2, 3],
        &[3.0, 7.0, 11.0, 0.0, 4.0, 8.0],
        0.0,
        0.0,
    );
    // torch.gather(x, 1, torch.tensor([[2], [0], [1], [2]])) = [[8], [1], [6], [11]]
    let g = i64s(&[2, 0, 1, 2], &[4, 1]);
    assert_tensor(
        &x.gather(1, &g).unwrap(),
        &[4, 1],
        &[8.0, 1.0, 6.0, 11.0],
        0.0,
        0.0,
    );
    // A transposed index tensor: torch.tensor([[0, 1], [2, 2]]).T = [[0, 2], [1, 2]]
    let gt = i64s(&[0, 1, 2, 2], &[2, 2]).t().unwrap();
    // torch.gather(x, 1, gt) = [[0, 8], [5, 9]]
    assert_tensor(
        &x.gather(1, &gt).unwrap(),
        &[2, 2],
        &[0.0, 8.0, 5.0, 9.0],
        0.0,
        0.0,
    );
    // x.scatter_add(0, torch.tensor([[1, 1, 1]]), torch.ones(1, 3)) adds 1 to row 1 = [1, 5, 9]
    let s = x
        .scatter_add(
            0,
            &i64s(&[1, 1, 1], &[1, 3]),
            &Tensor::ones([1, 3], DType::F32, &cpu()).unwrap(),
        )
        .unwrap();
    assert_tensor(
        &s,
        &[4, 3],
        &[
            0.0, 4.0, 8.0, 2.0, 6.0, 10.0, 2.0, 6.0, 10.0, 3.0, 7.0, 11.0,
        ],
        0.0,
        0.0,
    );
    // torch.cat([x, x], 1)[0] = [0, 4, 8, 0, 4, 8]
    assert_eq!(
        Tensor::cat(&[x.clone(), x.clone()], 1)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()[..6],
        [0.0, 4.0, 8.0, 0.0, 4.0, 8.0]
    );
    // F.pad(x, (1, 1), mode='reflect')[0] = [4, 0, 4, 8, 4]
    assert_eq!(
        x.pad(&[(1, 1)], PadMode::Reflect)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()[..5],
        [4.0, 0.0, 4.0, 8.0, 4.0]
    );
    // An NHWC buffer permuted to NCHW convolves like its contiguous copy.
    let mut g = sinew_tensor::Generator::new(5);
    let nhwc = g.randn([2, 5, 6, 3], DType::F64, &cpu()).unwrap();
    let nchw = nhwc.permute(&[0, 3, 1, 2]).unwrap();
    let w = g.randn([4, 3, 3, 2], DType::F64, &cpu()).unwrap();
    let cfg = Conv2dConfig {
        stride: (2, 1),
        padding: (1, 0),
        ..Default::default()
    };
    let strided = nchw.conv2d(&w, None, cfg).unwrap().to_vec_f64().unwrap();
    let dense = nchw
        .contiguous()
        .unwrap()
        .conv2d(&w, None, cfg)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    assert_close(&strided, &dense, 1e-12, 1e-12);
    let (pv, pi) = nchw.max_pool2d(Pool2dConfig::new(2)).unwrap();
    let (dv, di) = nchw
        .contiguous()
        .unwrap()
        .max_pool2d(Pool2dConfig::new(2))
        .unwrap();
    assert_eq!(pv.to_vec::<f64>().unwrap(), dv.to_vec::<f64>().unwrap());
    assert_eq!(pi.to_vec::<i64>().unwrap(), di.to_vec::<i64>().unwrap());
}

#[test]
fn in_place_copy_handles_overlap_and_dtype_conversion() {
    let t = f32s(&[1.0, 2.0, 3.0, 4.0], &[4]);
    // Shift right by one within the same storage: t[1:] = t[:-1].clone() in PyTorch terms.
    t.narrow(0, 1, 3)
        .unwrap()
        .copy_(&t.narrow(0, 0, 3).unwrap())
        .unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 1.0, 2.0, 3.0]);
    // A transposed destination and an f64 source converted on the way in.
    let m = zeros(&[2, 2]);
    m.t()
        .unwrap()
        .copy_(&f64s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]))
        .unwrap();
    assert_eq!(m.to_vec::<f32>().unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
    assert_eq!(
        m.copy_(&zeros(&[4])).unwrap_err().to_string(),
        "copy_: shape mismatch between [2, 2] and [4]"
    );
}

#[test]
fn one_storage_as_several_operands_is_locked_once() {
    // where_cond(mask, mask, mask) and scatter_add(x, i, x) read one storage three/two times.
    let mask = Tensor::from_vec(vec![true, false, true], [3]).unwrap();
    let picked = mask.where_cond(&mask, &mask).unwrap();
    assert_eq!(picked.to_vec::<bool>().unwrap(), vec![true, false, true]);
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).unwrap();
    let idx = Tensor::from_vec(vec![2i64, 0, 1], [3]).unwrap();
    let out = x.scatter_add(0, &idx, &x).unwrap();
    // out[2] += 1, out[0] += 2, out[1] += 3
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![3.0, 5.0, 4.0]);
}

#[test]
fn masked_fill_keeps_the_tensor_shape() {
    let x = Tensor::zeros([3], sinew_tensor::DType::F32, &sinew_tensor::Device::cpu()).unwrap();
    let big_mask = Tensor::from_vec(vec![true; 6], [2, 3]).unwrap();
    assert!(x.masked_fill(&big_mask, 1.0).is_err());
    let row = Tensor::from_vec(vec![true, false, true], [3]).unwrap();
    assert_eq!(
        x.masked_fill(&row, 1.0).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, 0.0, 1.0]
    );
}
