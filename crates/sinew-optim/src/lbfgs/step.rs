//! One L-BFGS step (PyTorch's `LBFGS.step(closure)`): up to `max_iter` iterations, each a
//! direction from the two-loop recursion over the stored curvature pairs and a move along it,
//! of `lr` or of a strong-Wolfe line search's length. The arithmetic on numbers (dot products,
//! step lengths) runs in f64 on the host, in PyTorch's order.

use sinew_tensor::{Error, Result, Tensor, enable_grad, no_grad};

use super::flat::{Closure, Flat, abs_max, abs_sum, dot};
use super::line_search::strong_wolfe;
use super::{History, Lbfgs};
use crate::python::py_min;

impl Lbfgs {
    /// One step: evaluates the closure, then iterates; returns the first evaluation's loss.
    pub(crate) fn run(&mut self, closure: &mut Closure<'_>) -> Result<Tensor> {
        self.config.check()?;
        if self.params.is_empty() {
            let _recording = enable_grad();
            return closure();
        }
        let _no_grad = no_grad();
        let c = self.config.clone();
        let max_eval = c.eval_budget();
        let flat = Flat::new(&self.params, c.maximize)?;
        let h = &mut self.history;

        let (orig_loss, mut loss) = flat.evaluate(closure)?;
        let mut current_evals = 1;
        h.func_evals += 1;
        let mut flat_grad = flat.gather_grad()?;
        let mut opt_cond = abs_max(&flat_grad)? <= c.tolerance_grad;
        if opt_cond {
            return Ok(orig_loss);
        }
        let mut n_iter = 0;
        while n_iter < c.max_iter {
            n_iter += 1;
            h.n_iter += 1;
            let d = if h.n_iter == 1 {
                h.old_dirs.clear();
                h.old_stps.clear();
                h.ro.clear();
                h.h_diag = 1.0;
                flat_grad.neg()?
            } else {
                remember_pair(h, &flat_grad, c.history_size)?;
                two_loop(h, &flat_grad)?
            };
            h.d = Some(d.clone());
            h.prev_flat_grad = Some(flat_grad.clone());
            let prev_loss = loss;
            h.prev_loss = Some(prev_loss);
            h.t = if h.n_iter == 1 {
                py_min(1.0, 1.0 / abs_sum(&flat_grad)?) * c.lr
            } else {
                c.lr
            };
            let gtd = dot(&flat_grad, &d)?;
            if gtd > -c.tolerance_change {
                break;
            }
            let mut ls_func_evals = 0;
            if c.line_search_fn.is_some() {
                let x_init = flat.values()?;
                let max_ls = max_eval.saturating_sub(current_evals);
                let mut objective = |t: f64| flat.directional_evaluate(closure, &x_init, t, &d);
                let found = strong_wolfe(&mut objective, &d, h.t, loss, &flat_grad, gtd, max_ls)?;
                loss = found.loss;
                flat_grad = found.grad;
                h.t = found.t;
                ls_func_evals = found.evals;
                flat.add_scaled(h.t, &d)?;
                opt_cond = abs_max(&flat_grad)? <= c.tolerance_grad;
            } else {
                flat.add_scaled(h.t, &d)?;
                if n_iter != c.max_iter {
                    loss = flat.evaluate(closure)?.1;
                    flat_grad = flat.gather_grad()?;
                    opt_cond = abs_max(&flat_grad)? <= c.tolerance_grad;
                    ls_func_evals = 1;
                }
            }
            current_evals += ls_func_evals;
            h.func_evals += ls_func_evals as u64;
            if n_iter == c.max_iter || current_evals >= max_eval || opt_cond {
                break;
            }
            if abs_max(&d.mul_scalar(h.t)?)? <= c.tolerance_change {
                break;
            }
            if (loss - prev_loss).abs() < c.tolerance_change {
                break;
            }
        }
        Ok(orig_loss)
    }
}

/// Adds the pair `y = g - g_prev`, `s = t * d` when its curvature `y.s` is above 1e-10,
/// dropping the oldest pair when the history is full.
fn remember_pair(h: &mut History, flat_grad: &Tensor, history_size: usize) -> Result<()> {
    let missing = || Error::invalid("LBFGS", "the state has no previous direction");
    let y = flat_grad.sub(h.prev_flat_grad.as_ref().ok_or_else(missing)?)?;
    let s = h.d.as_ref().ok_or_else(missing)?.mul_scalar(h.t)?;
    let ys = dot(&y, &s)?;
    if ys > 1e-10 {
        while h.old_dirs.len() >= history_size {
            h.old_dirs.pop_front();
            h.old_stps.pop_front();
            h.ro.pop_front();
        }
        h.h_diag = ys / dot(&y, &y)?;
        h.old_dirs.push_back(y);
        h.old_stps.push_back(s);
        h.ro.push_back(1.0 / ys);
    }
    Ok(())
}

/// The direction `-H g` from the two-loop recursion over the stored pairs, with the initial
/// inverse Hessian `h_diag * I`.
fn two_loop(h: &History, flat_grad: &Tensor) -> Result<Tensor> {
    let num_old = h.old_dirs.len();
    let mut al = vec![0.0; num_old];
    let q = flat_grad.neg()?;
    for i in (0..num_old).rev() {
        al[i] = dot(&h.old_stps[i], &q)? * h.ro[i];
        q.axpy_(-al[i], &h.old_dirs[i])?;
    }
    let r = q.mul_scalar(h.h_diag)?;
    for i in 0..num_old {
        let be_i = dot(&h.old_dirs[i], &r)? * h.ro[i];
        r.axpy_(al[i] - be_i, &h.old_stps[i])?;
    }
    Ok(r)
}
