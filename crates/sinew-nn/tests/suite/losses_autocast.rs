//! Losses under autocast run in f32, as PyTorch's autocast runs every loss: f16/bf16 inputs
//! give, bit for bit, the f32 loss of their values widened first, and squares that would
//! overflow f16 stay finite.

use sinew_nn::loss::*;
use sinew_tensor::{DType, Device, Generator, Result, Tensor, with_autocast};

type Loss = fn(&Inputs) -> Result<Tensor>;

/// The inputs every case draws from, all in one float dtype (the labels i64).
struct Inputs {
    x: Tensor,
    y: Tensor,
    probs: Tensor,
    targets: Tensor,
    log_probs: Tensor,
    signs: Tensor,
    row_signs: Tensor,
    classes: Tensor,
}

impl Inputs {
    fn new(dtype: DType) -> Result<Inputs> {
        let mut rng = Generator::new(17);
        let cpu = Device::cpu();
        let x = rng.randn([4, 5], DType::F32, &cpu)?;
        let y = rng.randn([4, 5], DType::F32, &cpu)?;
        let signs = x.gt_scalar(0.0)?.to_dtype(DType::F32)?.mul_scalar(2.0)?;
        let in_dtype = |t: Tensor| t.to_dtype(dtype);
        Ok(Inputs {
            probs: in_dtype(y.sigmoid()?)?,
            targets: in_dtype(x.sigmoid()?)?,
            log_probs: in_dtype(y.log_softmax(1)?)?,
            row_signs: in_dtype(signs.narrow(1, 0, 1)?.squeeze(1)?.sub_scalar(1.0)?)?,
            signs: in_dtype(signs.sub_scalar(1.0)?)?,
            classes: Tensor::from_vec(vec![0i64, 3, 4, 1], [4])?,
            x: in_dtype(x)?,
            y: in_dtype(y)?,
        })
    }

    /// The same inputs in f32.
    fn widened(&self) -> Result<Inputs> {
        let wide = |t: &Tensor| t.to_dtype(DType::F32);
        Ok(Inputs {
            x: wide(&self.x)?,
            y: wide(&self.y)?,
            probs: wide(&self.probs)?,
            targets: wide(&self.targets)?,
            log_probs: wide(&self.log_probs)?,
            signs: wide(&self.signs)?,
            row_signs: wide(&self.row_signs)?,
            classes: self.classes.clone(),
        })
    }
}

fn cases() -> Vec<(&'static str, Loss)> {
    vec![
        ("mse", |i| mse_loss(&i.x, &i.y, Reduction::Mean)),
        ("l1", |i| l1_loss(&i.x, &i.y, Reduction::Sum)),
        ("smooth_l1", |i| {
            smooth_l1_loss(&i.x, &i.y, 0.5, Reduction::Mean)
        }),
        ("huber", |i| huber_loss(&i.x, &i.y, 0.7, Reduction::Mean)),
        ("bce", |i| binary_cross_entropy(&i.probs, &i.targets)),
        ("bce_with_logits", |i| {
            binary_cross_entropy_with_logits(&i.x, &i.probs)
        }),
        ("kl_div", |i| {
            kl_div(&i.log_probs, &i.probs, Reduction::BatchMean, false)
        }),
        ("cosine_similarity", |i| {
            cosine_similarity(&i.x, &i.y, 1, 1e-8)
        }),
        ("cosine_embedding", |i| {
            cosine_embedding_loss(&i.x, &i.y, &i.row_signs, 0.1, Reduction::Mean)
        }),
        ("hinge_embedding", |i| {
            hinge_embedding_loss(&i.x, &i.signs, 1.0, Reduction::Mean)
        }),
        ("multi_margin", |i| multi_margin_loss(&i.x, &i.classes)),
        ("nll", |i| nll_loss(&i.log_probs, &i.classes)),
        ("cross_entropy", |i| cross_entropy(&i.x, &i.classes)),
    ]
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

#[test]
fn losses_run_in_f32_under_autocast() -> Result<()> {
    for dtype in [DType::F16, DType::BF16] {
        let inputs = Inputs::new(dtype)?;
        let widened = inputs.widened()?;
        for (name, loss) in cases() {
            let got = with_autocast(dtype, || loss(&inputs))?;
            assert_eq!(got.dtype(), DType::F32, "{name} {dtype}");
            let want = loss(&widened)?;
            assert_eq!(bits(&got), bits(&want), "{name} {dtype}");
        }
    }
    Ok(())
}

/// A difference of 300 squares to 90000, past f16's largest value (65504): in f32 it is exact.
#[test]
fn a_square_past_the_half_range_stays_finite() -> Result<()> {
    let x = Tensor::from_vec(vec![300.0f32, 0.0], [2])?.to_dtype(DType::F16)?;
    let y = Tensor::zeros([2], DType::F16, &Device::cpu())?;
    let loss = with_autocast(DType::F16, || mse_loss(&x, &y, Reduction::Sum))?;
    assert_eq!(loss.to_vec::<f32>()?, vec![90000.0]);
    Ok(())
}
