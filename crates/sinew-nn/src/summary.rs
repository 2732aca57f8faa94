//! `summary()`: a Keras-style table (layer, type, output shape, parameters) for one input.
//!
//! Built-in layers report their output with [`note`] while a summary is being recorded (a
//! thread-local flag; one branch otherwise). Rows are named by the layer's path in the tree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use sinew_tensor::{DType, Device, Result, Shape, Tensor, no_grad};

use crate::module::{Entry, Module};
use crate::module_ext::{ModuleExt, walk};

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Path in the module tree (`features.0`).
    pub name: String,
    /// Layer type (`Conv2d`).
    pub kind: String,
    /// Output shape for the summarised input.
    pub output_shape: Shape,
    /// The layer's own parameter elements.
    pub parameters: usize,
}

/// The table `summary()` returns; `Display` prints it like Keras' `model.summary()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// One row per layer call, in call order.
    pub rows: Vec<SummaryRow>,
    /// The model's output shape.
    pub output_shape: Shape,
    /// All parameter elements.
    pub total_parameters: usize,
    /// Parameter elements that require a gradient.
    pub trainable_parameters: usize,
}

/// Layers are found by address and type. Zero-sized layers (`ReLU`, `Flatten`) all share one
/// address, so each (address, type) key holds its paths in tree order and hands them out in
/// call order: the n-th `ReLU` called is the n-th `ReLU` of the tree (true of `Sequential`
/// and of every model that calls its layers in the order it declares them).
struct Recorder {
    names: HashMap<(usize, &'static str), (Vec<String>, usize)>,
    rows: Vec<SummaryRow>,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

fn address<M: Module + ?Sized>(m: &M) -> usize {
    m as *const M as *const () as usize
}

/// Called by layers after their forward: adds a row when a summary is being recorded.
pub fn note(module: &dyn Module, output: &Tensor) {
    RECORDER.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            let key = (address(module), module.type_name());
            let name = match rec.names.get_mut(&key) {
                Some((paths, next)) if !paths.is_empty() => {
                    let name = paths[*next % paths.len()].clone();
                    *next += 1;
                    name
                }
                _ => "?".to_string(),
            };
            let parameters = own_parameters(module);
            rec.rows.push(SummaryRow {
                name,
                kind: module.type_name().to_string(),
                output_shape: output.shape().clone(),
                parameters,
            });
        }
    });
}

fn own_parameters(m: &dyn Module) -> usize {
    let mut n = 0;
    walk(m, |_, e| {
        if let Entry::Parameter(p) = e {
            n += p.value().elem_count();
        }
    });
    n
}

/// Runs `model` on zeros of `input_shape` (f32, CPU, no gradient, evaluation mode restored
/// afterwards to what it was) and tabulates every layer call.
pub fn summary(model: &dyn Module, input_shape: impl Into<Shape>) -> Result<Summary> {
    let mut names: HashMap<(usize, &'static str), (Vec<String>, usize)> = HashMap::new();
    for (path, m) in model.named_modules() {
        let path = if path.is_empty() {
            "(model)".into()
        } else {
            path
        };
        let key = (address(m), m.type_name());
        names.entry(key).or_default().0.push(path);
    }
    let device = model
        .parameters()
        .first()
        .map(|p| p.value().device().clone())
        .unwrap_or_else(Device::cpu);
    let x = Tensor::zeros(input_shape, DType::F32, &device)?;
    let was_training: Vec<bool> = modes(model);
    model.eval();
    RECORDER.with(|r| {
        *r.borrow_mut() = Some(Recorder {
            names,
            rows: Vec::new(),
        })
    });
    let out = {
        let _guard = no_grad();
        model.forward(&x)
    };
    let rec = RECORDER.with(|r| r.borrow_mut().take());
    restore_modes(model, &was_training);
    let out = out?;
    Ok(Summary {
        rows: rec.map(|r| r.rows).unwrap_or_default(),
        output_shape: out.shape().clone(),
        total_parameters: model.num_parameters(),
        trainable_parameters: model.num_trainable_parameters(),
    })
}

fn modes(model: &dyn Module) -> Vec<bool> {
    let mut out = Vec::new();
    walk(model, |_, e| {
        if let Entry::Mode(m) = e {
            out.push(m.is_training());
        }
    });
    out
}

fn restore_modes(model: &dyn Module, training: &[bool]) {
    let mut i = 0;
    walk(model, |_, e| {
        if let Entry::Mode(m) = e {
            m.set_training(training.get(i).copied().unwrap_or(true));
            i += 1;
        }
    });
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{:?}", r.output_shape.dims()))
            .collect();
        let name_w = self
            .rows
            .iter()
            .map(|r| r.name.len() + r.kind.len() + 3)
            .max()
            .unwrap_or(0)
            .max(12);
        let shape_w = shapes.iter().map(String::len).max().unwrap_or(0).max(12);
        let line = "-".repeat(name_w + shape_w + 16);
        writeln!(
            f,
            "{:name_w$}  {:shape_w$}  {:>12}",
            "Layer (type)", "Output shape", "Param #"
        )?;
        writeln!(f, "{line}")?;
        for (row, shape) in self.rows.iter().zip(&shapes) {
            let label = format!("{} ({})", row.name, row.kind);
            writeln!(
                f,
                "{label:name_w$}  {shape:shape_w$}  {:>12}",
                row.parameters
            )?;
        }
        writeln!(f, "{line}")?;
        writeln!(f, "Output shape: {:?}", self.output_shape.dims())?;
        writeln!(f, "Total params: {}", self.total_parameters)?;
        writeln!(f, "Trainable params: {}", self.trainable_parameters)?;
        write!(
            f,
            "Non-trainable params: {}",
            self.total_parameters - self.trainable_parameters
        )
    }
}
