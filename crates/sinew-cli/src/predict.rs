//! `sinew predict`: the top classes (with probabilities) for image files or CSV rows.

use std::path::Path;

use sinew::data::image_folder::{ColorMode, decode_image};
use sinew::data::transforms::{Compose, Resize, ToTensor, Transform};
use sinew::data::{Sample, rng::rng_for};
use sinew::prelude::*;

use crate::args::PredictArgs;
use crate::datasets::{self, DataInfo};
use crate::models;

/// One input: a name to print and the model's input tensor (batch of 1).
fn inputs_of(path: &Path, info: &DataInfo) -> Result<Vec<(String, Tensor)>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "csv" {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid("predict", format!("{}: {e}", path.display())))?;
        let mut rows = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let values: std::result::Result<Vec<f32>, _> =
                line.split(',').map(|v| v.trim().parse::<f32>()).collect();
            let Ok(values) = values else {
                if i == 0 {
                    continue; // a header
                }
                return Err(Error::invalid(
                    "predict",
                    format!("{} line {}: not a row of numbers", path.display(), i + 1),
                ));
            };
            if let Some(col) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    "predict",
                    format!(
                        "{} line {}, column {col}: not a finite number",
                        path.display(),
                        i + 1
                    ),
                ));
            }
            let n: usize = info.input.iter().product();
            if values.len() != n {
                return Err(Error::invalid(
                    "predict",
                    format!(
                        "{} line {}: {} values, the model takes {n}",
                        path.display(),
                        i + 1,
                        values.len()
                    ),
                ));
            }
            let shape = if info.image {
                vec![1, info.input[0], info.input[1], info.input[2]]
            } else {
                vec![1, n]
            };
            rows.push((
                format!("{}:{}", path.display(), i + 1),
                Tensor::from_vec(values, shape)?,
            ));
        }
        if rows.is_empty() {
            return Err(Error::invalid(
                "predict",
                format!("{}: no rows of numbers", path.display()),
            ));
        }
        return Ok(rows);
    }
    if !info.image {
        return Err(Error::invalid(
            "predict",
            format!(
                "{}: this dataset takes CSV rows, not images",
                path.display()
            ),
        ));
    }
    let [c, h, w] = info.input;
    let mode = if c == 1 {
        ColorMode::Gray
    } else {
        ColorMode::Rgb
    };
    let image = decode_image(path, mode)?;
    // To f32 CHW in [0, 1] (as the loader does), then to the model's size.
    let to_input = Compose::new().then(ToTensor).then(Resize {
        height: h,
        width: w,
    });
    let sample = to_input.apply(Sample::image_u8(image, 0), &mut rng_for(0, 0, 0))?;
    let mut values = vec![0f32; c * h * w];
    sample.input.write_f32(&mut values)?;
    Ok(vec![(
        path.display().to_string(),
        Tensor::from_vec(values, [1, c, h, w])?,
    )])
}

/// Runs `sinew predict`.
pub fn predict(args: &PredictArgs) -> Result<()> {
    let info = models::input_for(
        args.model.model,
        datasets::info(args.model.dataset, &args.data)?,
    );
    let model = models::build(args.model.model, &info)?;
    model.load_state_dict(&sinew::nn::load_weights(&args.weights)?, true)?;
    model.eval();
    let _guard = no_grad();
    for path in &args.inputs {
        for (name, x) in inputs_of(path, &info)? {
            let out = model.forward(&x)?;
            match info.classes {
                // The perceptron's one 0/1 output is the class itself.
                Some(_) if out.elem_count() == 1 => {
                    println!("{name}: class {}", out.flatten_all()?.to_vec::<f32>()?[0])
                }
                None => println!("{name}: {:.6}", out.flatten_all()?.to_vec::<f32>()?[0]),
                Some(_) => {
                    let probs = out.softmax(-1)?.flatten_all()?.to_vec::<f32>()?;
                    let mut order: Vec<usize> = (0..probs.len()).collect();
                    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
                    let top: Vec<String> = order
                        .iter()
                        .take(args.top)
                        .map(|&k| format!("class {k} ({:.2}%)", 100.0 * probs[k]))
                        .collect();
                    println!("{name}: {}", top.join(", "));
                }
            }
        }
    }
    Ok(())
}
