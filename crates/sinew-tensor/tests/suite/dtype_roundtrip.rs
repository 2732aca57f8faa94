//! Property tests of dtype conversions: f16/bf16 round trips bit for bit against the `half`
//! crate, float-to-integer truncation and saturation, byte round trips, and the rule that
//! half-precision ops compute in f32 and round once.

use crate::common;

use common::*;
use proptest::prelude::*;
use sinew_tensor::cpu::CpuStorage;
use sinew_tensor::{DType, Tensor, bf16, f16};

fn same_bits_or_both_nan(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn f32_to_half_rounds_like_the_half_crate(bits in prop::collection::vec(any::<u32>(), 1..64)) {
        let xs: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let t = Tensor::from_vec(xs.clone(), [xs.len()]).unwrap();
        let h = t.to_dtype(DType::F16).unwrap().to_vec::<f16>().unwrap();
        let b = t.to_dtype(DType::BF16).unwrap().to_vec::<bf16>().unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let (eh, eb) = (f16::from_f32(x), bf16::from_f32(x));
            prop_assert!(h[i] == eh || (h[i].is_nan() && eh.is_nan()), "f16 of {x}: {} vs {}", h[i], eh);
            prop_assert!(b[i] == eb || (b[i].is_nan() && eb.is_nan()), "bf16 of {x}: {} vs {}", b[i], eb);
        }
        // And back: widening is exact.
        let back = t.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap();
        for (i, &x) in xs.iter().enumerate() {
            prop_assert!(same_bits_or_both_nan(back[i], bf16::from_f32(x).to_f32()));
        }
    }

    #[test]
    fn every_half_value_survives_a_trip_through_f32_and_f64(bits in prop::collection::vec(any::<u16>(), 1..64)) {
        let h: Vec<f16> = bits.iter().map(|&b| f16::from_bits(b)).collect();
        let b: Vec<bf16> = bits.iter().map(|&b| bf16::from_bits(b)).collect();
        let th = Tensor::from_vec(h.clone(), [h.len()]).unwrap();
        let tb = Tensor::from_vec(b.clone(), [b.len()]).unwrap();
        for via in [DType::F32, DType::F64] {
            let rh = th.to_dtype(via).unwrap().to_dtype(DType::F16).unwrap().to_vec::<f16>().unwrap();
            let rb = tb.to_dtype(via).unwrap().to_dtype(DType::BF16).unwrap().to_vec::<bf16>().unwrap();
            for i in 0..h.len() {
                prop_assert!(rh[i].to_bits() == h[i].to_bits() || (h[i].is_nan() && rh[i].is_nan()), "f16 bits {:#x} via {via}", bits[i]);
                prop_assert!(rb[i].to_bits() == b[i].to_bits() || (b[i].is_nan() && rb[i].is_nan()), "bf16 bits {:#x} via {via}", bits[i]);
            }
        }
        // f16 -> bf16 goes through f32, like PyTorch's `.to(torch.bfloat16)`.
        let cross = th.to_dtype(DType::BF16).unwrap().to_vec::<bf16>().unwrap();
        for i in 0..h.len() {
            let e = bf16::from_f32(h[i].to_f32());
            prop_assert!(cross[i] == e || (e.is_nan() && cross[i].is_nan()));
        }
    }

    #[test]
    fn floats_to_integers_truncate_toward_zero_and_saturate(xs in prop::collection::vec(-1e20f64..1e20, 1..32)) {
        let t = Tensor::from_vec(xs.clone(), [xs.len()]).unwrap();
        let i = t.to_dtype(DType::I64).unwrap().to_vec::<i64>().unwrap();
        let u = t.to_dtype(DType::U8).unwrap().to_vec::<u8>().unwrap();
        for k in 0..xs.len() {
            prop_assert_eq!(i[k], xs[k] as i64);
            prop_assert_eq!(u[k], xs[k] as u8);
        }
        // Integers below 2^53 survive i64 -> f64 -> i64.
        let ints: Vec<i64> = xs.iter().map(|&x| (x / 1e5) as i64).collect();
        let back = Tensor::from_vec(ints.clone(), [ints.len()]).unwrap().to_dtype(DType::F64).unwrap().to_dtype(DType::I64).unwrap();
        prop_assert_eq!(back.to_vec::<i64>().unwrap(), ints);
    }

    #[test]
    fn bytes_round_trip_for_every_dtype(vals in prop::collection::vec(-300i32..300, 0..40), dtype in prop::sample::select(DType::ALL.to_vec())) {
        let t = Tensor::from_vec(vals.iter().map(|&v| v as f64).collect::<Vec<_>>(), [vals.len()]).unwrap().to_dtype(dtype).unwrap();
        let host = t.to_cpu_storage().unwrap();
        prop_assert_eq!(host.as_bytes().len(), vals.len() * dtype.size_in_bytes());
        let again = CpuStorage::from_bytes(dtype, host.as_bytes()).unwrap();
        prop_assert_eq!(&again, &host);
        // A strided view downloads its own elements only, in row-major order.
        if vals.len() >= 2 {
            let every_other = t.slice(0, 1, vals.len(), 2).unwrap();
            let expect: Vec<f64> = host.to_f64_vec().into_iter().skip(1).step_by(2).collect();
            prop_assert_eq!(every_other.to_vec_f64().unwrap(), expect);
        }
    }

    #[test]
    fn half_unary_ops_are_the_f32_op_rounded_once(bits in prop::collection::vec(any::<u16>(), 1..32), layout in layout_kind()) {
        let h: Vec<f16> = bits.iter().map(|&b| f16::from_bits(b)).collect();
        let wide: Vec<f64> = h.iter().map(|x| x.to_f64()).collect();
        let x16 = with_layout(&wide, &[wide.len()], DType::F16, layout);
        let x32 = with_layout(&wide, &[wide.len()], DType::F32, layout);
        for op in sinew_tensor::op_table::unary_ops() {
            let got = x16.unary(op).unwrap().to_vec::<f16>().unwrap();
            let want: Vec<f16> = x32.unary(op).unwrap().to_vec::<f32>().unwrap().into_iter().map(f16::from_f32).collect();
            for i in 0..got.len() {
                prop_assert!(got[i].to_bits() == want[i].to_bits() || (got[i].is_nan() && want[i].is_nan()), "{} of {}", op.name(), h[i]);
            }
        }
    }

    #[test]
    fn bf16_binary_ops_are_the_f32_op_rounded_once(a in prop::collection::vec(any::<u16>(), 8), b in prop::collection::vec(any::<u16>(), 8)) {
        let (a, b): (Vec<bf16>, Vec<bf16>) = (a.into_iter().map(bf16::from_bits).collect(), b.into_iter().map(bf16::from_bits).collect());
        let (ta, tb) = (Tensor::from_vec(a.clone(), [2, 4]).unwrap(), Tensor::from_vec(b.clone(), [2, 4]).unwrap());
        for op in sinew_tensor::op_table::BINARY_OPS {
            let got = ta.binary(op, &tb).unwrap().to_vec::<bf16>().unwrap();
            let f32s = |v: &[bf16]| Tensor::from_vec(v.iter().map(|x| x.to_f32()).collect::<Vec<_>>(), [2, 4]).unwrap();
            let want = f32s(&a).binary(op, &f32s(&b)).unwrap().to_vec::<f32>().unwrap();
            for i in 0..8 {
                let w = bf16::from_f32(want[i]);
                prop_assert!(got[i].to_bits() == w.to_bits() || (got[i].is_nan() && w.is_nan()), "{} of {} and {}", op.name(), a[i], b[i]);
            }
        }
    }
}

#[test]
fn special_values_convert_like_pytorch() {
    // torch.tensor([nan, inf, -inf, -0.0, 65520., 1e-8]).to(torch.float16)
    //   = [nan, inf, -inf, -0., inf, 0.]
    let x = Tensor::from_vec(
        vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            65520.0,
            1e-8,
        ],
        [6],
    )
    .unwrap();
    let h = x
        .to_dtype(DType::F16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(h[0].is_nan());
    assert_eq!(
        &h[1..],
        &[f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::INFINITY, 0.0]
    );
    assert!(h[3].is_sign_negative());
    // torch.tensor([nan, 0.0, -0.5, 2.0]).bool() = [True, False, True, True]
    let b = Tensor::from_vec(vec![f32::NAN, 0.0, -0.5, 2.0], [4])
        .unwrap()
        .to_dtype(DType::Bool)
        .unwrap();
    assert_eq!(b.to_vec::<bool>().unwrap(), vec![true, false, true, true]);
    // torch.tensor([-1.7, 1.7, 300.0]).to(torch.int64) = [-1, 1, 300]
    let i = Tensor::from_vec(vec![-1.7f32, 1.7, 300.0], [3])
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![-1, 1, 300]);
    // Bytes that are not 0 or 1 are not bools.
    assert_eq!(
        CpuStorage::from_bytes(DType::Bool, &[0, 2])
            .unwrap_err()
            .to_string(),
        "from_bytes: byte 2 is not a bool"
    );
    assert!(CpuStorage::from_bytes(DType::F32, &[0, 0, 0]).is_err());
}

/// The case `half_unary_ops_are_the_f32_op_rounded_once` once found: sigmoid of -0.16394043 (f16
/// bits 0xb13f) in a strided view, where the f32 op took the C library's `exp` and the f16 op
/// (through a contiguous f32 copy) the vectorised one, an ulp apart that f16's rounding kept.
/// Both now take the vectorised formula whatever the layout.
#[test]
fn half_sigmoid_of_a_strided_view_is_the_f32_op_rounded_once() {
    let wide = [f16::from_bits(0xb13f).to_f64(), 0.0];
    let x16 = with_layout(&wide, &[2], DType::F16, LayoutKind::Strided);
    let x32 = with_layout(&wide, &[2], DType::F32, LayoutKind::Strided);
    let got = x16.sigmoid().unwrap().to_vec::<f16>().unwrap();
    let want: Vec<f16> = x32
        .sigmoid()
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f16::from_f32)
        .collect();
    assert_eq!(got, want);
}
