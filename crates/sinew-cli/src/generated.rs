//! The generated tasks (no download): two spirals, XOR, two moons, and y = sin(x).

use sinew::data::{Input, Sample, Target, VecDataset};
use sinew::prelude::*;

use crate::args::DatasetName;

/// `n` examples of a generated task.
pub fn generate(name: DatasetName, n: usize, seed: u64) -> Result<VecDataset<Sample>> {
    let mut g = Generator::new(seed);
    let cpu = Device::cpu();
    let u = g.rand([n, 2], DType::F64, &cpu)?.to_vec::<f64>()?;
    let noise = g.randn([n, 2], DType::F64, &cpu)?.to_vec::<f64>()?;
    let pi = std::f64::consts::PI;
    let items = (0..n)
        .map(|i| {
            let (a, b, e1, e2) = (u[2 * i], u[2 * i + 1], noise[2 * i], noise[2 * i + 1]);
            let class = (i % 2) as i64;
            let (x, y, target) = match name {
                DatasetName::Spirals => {
                    let t = (0.25 + 0.75 * a) * 3.0 * pi;
                    let phase = class as f64 * pi;
                    let r = t / (3.0 * pi);
                    (
                        r * (t + phase).cos() + 0.05 * e1,
                        r * (t + phase).sin() + 0.05 * e2,
                        Target::Class(class),
                    )
                }
                DatasetName::Xor => {
                    let (x, y) = (2.0 * a - 1.0, 2.0 * b - 1.0);
                    (x, y, Target::Class(i64::from((x > 0.0) != (y > 0.0))))
                }
                DatasetName::Moons => {
                    let t = a * pi;
                    let (x, y) = if class == 0 {
                        (t.cos(), t.sin())
                    } else {
                        (1.0 - t.cos(), 0.5 - t.sin())
                    };
                    (x + 0.1 * e1, y + 0.1 * e2, Target::Class(class))
                }
                _ => {
                    let x = (2.0 * a - 1.0) * pi;
                    (x, 0.0, Target::Value(x.sin() as f32))
                }
            };
            let features = if name == DatasetName::Sin {
                vec![x as f32]
            } else {
                vec![x as f32, y as f32]
            };
            Sample {
                input: Input::Features(features),
                target,
            }
        })
        .collect();
    Ok(VecDataset::new(items))
}
