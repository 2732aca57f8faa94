//! Adafactor on a convolution-shaped weight against PyTorch's (`adafactor_conv.*` in
//! `tests/reference/trajectories.safetensors`, `gen_trajectories.py`): a 4-d parameter keeps
//! its second moment factored over its last two dims (`row_var` [2, 3, 2, 1], `col_var`
//! [2, 3, 1, 4]), and three steps give PyTorch's weights. (The MLP trajectories in
//! `trajectories.rs` cover matrices and vectors.)

use sinew_nn::{StateDict, load_safetensors};
use sinew_optim::{AdafactorConfig, Optimizer, adafactor};
use sinew_tensor::{Parameter, Result, Tensor};

fn reference() -> StateDict {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference/trajectories.safetensors");
    load_safetensors(path).expect("reference file")
}

#[test]
fn a_4d_weight_is_factored_over_its_last_two_dims() -> Result<()> {
    let r = reference();
    let get = |k: &str| r.get(&format!("adafactor_conv.{k}")).unwrap().clone();
    let w = Parameter::new(get("w0").force_contiguous()?);
    let mut opt = adafactor(vec![("w".into(), w.clone())], AdafactorConfig::new(0.05));
    let grads = get("grads");
    for k in 0..3 {
        let grad = grads.narrow(0, k, 1)?.squeeze(0)?.force_contiguous()?;
        w.value().set_grad(Some(grad))?;
        opt.step()?;
    }
    let close = |got: &Tensor, want: &Tensor, what: &str| -> Result<()> {
        assert_eq!(got.dims(), want.dims(), "{what}");
        for (a, b) in got.to_vec::<f64>()?.iter().zip(want.to_vec::<f64>()?) {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "{what}: {a} vs {b}"
            );
        }
        Ok(())
    };
    close(&w.value(), &get("w3"), "weights")?;
    let state = opt.state_dict()?;
    let buffers = &state.params["w"].buffers;
    close(&buffers[0].1, &get("row_var"), "row_var")?;
    close(&buffers[1].1, &get("col_var"), "col_var")?;
    Ok(())
}
