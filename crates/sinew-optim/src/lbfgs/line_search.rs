//! The strong-Wolfe line search of L-BFGS (PyTorch's `_strong_wolfe` and `_cubic_interpolate`,
//! after minFunc): a bracketing phase that grows the step until the sufficient-decrease or
//! curvature condition brackets a minimiser, then a zoom phase of safeguarded cubic
//! interpolation. Numbers follow PyTorch's operation order; comparisons follow Python's
//! `min`/`max`.

use sinew_tensor::{Result, Tensor};

use super::flat::{abs_max, dot};
use crate::python::{py_max, py_min};

/// Sufficient-decrease constant.
const C1: f64 = 1e-4;
/// Curvature constant.
const C2: f64 = 0.9;
/// The zoom stops once the bracket times `max |d|` is below this (PyTorch's default; the
/// optimizer's own `tolerance_change` is not passed down).
const TOLERANCE_CHANGE: f64 = 1e-9;

/// A step length the search settled on, with the loss and gradient there.
pub(crate) struct Found {
    /// The loss at the step.
    pub(crate) loss: f64,
    /// The flat gradient at the step.
    pub(crate) grad: Tensor,
    /// The step length.
    pub(crate) t: f64,
    /// Loss evaluations spent.
    pub(crate) evals: usize,
}

/// One end of a bracket: step length, loss, gradient and directional derivative.
#[derive(Clone)]
struct Point {
    t: f64,
    f: f64,
    g: Tensor,
    gtd: f64,
}

/// The minimiser of the cubic through `(x1, f1)` and `(x2, f2)` with slopes `g1`, `g2`, clamped
/// to `bounds` (default: between the two points); their midpoint when the cubic has none.
fn cubic_interpolate(p1: (f64, f64, f64), p2: (f64, f64, f64), bounds: Option<(f64, f64)>) -> f64 {
    let ((x1, f1, g1), (x2, f2, g2)) = (p1, p2);
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        py_min(py_max(min_pos, lo), hi)
    } else {
        (lo + hi) / 2.0
    }
}

/// Searches along `d` from the point with loss `f`, gradient `g` and slope `gtd` (< 0),
/// starting at length `t`, with at most `max_ls` iterations after the first evaluation.
/// `objective(t)` is the loss and flat gradient at length `t`.
pub(crate) fn strong_wolfe(
    objective: &mut dyn FnMut(f64) -> Result<(f64, Tensor)>,
    d: &Tensor,
    mut t: f64,
    f: f64,
    g: &Tensor,
    gtd: f64,
    max_ls: usize,
) -> Result<Found> {
    let d_norm = abs_max(d)?;
    let evaluate = |objective: &mut dyn FnMut(f64) -> Result<(f64, Tensor)>, t: f64| {
        let (f, g) = objective(t)?;
        let gtd = dot(&g, d)?;
        Ok::<_, sinew_tensor::Error>(Point { t, f, g, gtd })
    };
    let mut new = evaluate(objective, t)?;
    let mut evals = 1;
    let mut prev = Point {
        t: 0.0,
        f,
        g: g.clone(),
        gtd,
    };
    let mut done = false;
    let mut ls_iter = 0;
    let mut bracket: Option<Vec<Point>> = None;
    while ls_iter < max_ls {
        if new.f > f + C1 * t * gtd || (ls_iter > 1 && new.f >= prev.f) {
            bracket = Some(vec![prev, new.clone()]);
            break;
        }
        if new.gtd.abs() <= -C2 * gtd {
            bracket = Some(vec![new.clone()]);
            done = true;
            break;
        }
        if new.gtd >= 0.0 {
            bracket = Some(vec![prev, new.clone()]);
            break;
        }
        let min_step = t + 0.01 * (t - prev.t);
        let max_step = t * 10.0;
        t = cubic_interpolate(
            (prev.t, prev.f, prev.gtd),
            (t, new.f, new.gtd),
            Some((min_step, max_step)),
        );
        prev = new;
        new = evaluate(objective, t)?;
        evals += 1;
        ls_iter += 1;
    }
    // Out of iterations: the bracket is the start and the last point.
    let mut bracket = bracket.unwrap_or_else(|| {
        let start = Point {
            t: 0.0,
            f,
            g: g.clone(),
            gtd,
        };
        vec![start, new.clone()]
    });

    let order = |b: &[Point]| {
        if b[0].f <= b[b.len() - 1].f {
            (0, 1)
        } else {
            (1, 0)
        }
    };
    let (mut low, mut high) = order(&bracket);
    let mut insuf_progress = false;
    while !done && ls_iter < max_ls {
        if (bracket[1].t - bracket[0].t).abs() * d_norm < TOLERANCE_CHANGE {
            break;
        }
        let (b0, b1) = (&bracket[0], &bracket[1]);
        t = cubic_interpolate((b0.t, b0.f, b0.gtd), (b1.t, b1.f, b1.gtd), None);
        let (b_max, b_min) = (py_max(b0.t, b1.t), py_min(b0.t, b1.t));
        let eps = 0.1 * (b_max - b_min);
        if py_min(b_max - t, t - b_min) < eps {
            if insuf_progress || t >= b_max || t <= b_min {
                t = if (t - b_max).abs() < (t - b_min).abs() {
                    b_max - eps
                } else {
                    b_min + eps
                };
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        let point = evaluate(objective, t)?;
        evals += 1;
        ls_iter += 1;
        if point.f > f + C1 * t * gtd || point.f >= bracket[low].f {
            bracket[high] = point;
            (low, high) = order(&bracket);
        } else {
            if point.gtd.abs() <= -C2 * gtd {
                done = true;
            } else if point.gtd * (bracket[high].t - bracket[low].t) >= 0.0 {
                bracket[high] = bracket[low].clone();
            }
            bracket[low] = point;
        }
    }
    let best = bracket.swap_remove(low);
    Ok(Found {
        loss: best.f,
        grad: best.g,
        t: best.t,
        evals,
    })
}
