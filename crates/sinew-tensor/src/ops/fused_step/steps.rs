//! The hyper-parameters of each fused optimizer step ([`super::FusedStep`]): PyTorch's
//! `torch.optim` formulas for one parameter `p` with gradient `g`. Every step starts from the
//! effective gradient `d = ±g` (`-g` when maximizing) `+ wd p` (L2 weight decay, where the
//! optimizer puts it in the gradient).

/// SGD (PyTorch's `torch.optim.SGD`): with momentum `b = d` at the first step, else
/// `b = mu b + (1 - dampening) d`, then `d = d + mu b` (Nesterov) or `d = b`; finally
/// `p -= lr d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f64,
    /// L2 penalty added to the gradient (`wd`).
    pub weight_decay: f64,
    /// Momentum factor (`mu`); 0 for plain SGD (no buffer).
    pub momentum: f64,
    /// Dampening of the gradient in the buffer.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend (`-g`).
    pub maximize: bool,
    /// The first step (the buffer takes `d` as it is).
    pub first: bool,
}

/// Adam or AdamW at step `t` (PyTorch's `torch.optim.Adam` / `AdamW`): AdamW first scales
/// `p *= 1 - lr wd`; `m = lerp(m, d, 1 - b1)`, `v = b2 v + (1 - b2) d d`, with AMSGrad
/// `vmax = max(vmax, v)` used in `v`'s place below;
/// `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f64,
    /// `(b1, b2)`.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay: in the gradient (Adam) or decoupled (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// AMSGrad: a third buffer, the running maximum of `v`.
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// The step count `t` (1 at the first step).
    pub step: u64,
}

/// Adamax at step `t` (PyTorch's `torch.optim.Adamax`): `m = lerp(m, d, 1 - b1)`,
/// `u = max(b2 u, |d| + eps)`, `p -= lr / (1 - b1^t) * m / u`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamaxStep {
    /// Learning rate.
    pub lr: f64,
    /// `(b1, b2)`.
    pub betas: (f64, f64),
    /// Added to `|d|`.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// The step count `t` (1 at the first step).
    pub step: u64,
}

/// Adagrad (PyTorch's `torch.optim.Adagrad`): `s += d d`,
/// `p -= lr / (1 + (t - 1) lr_decay) * d / (sqrt(s) + eps)`; `lr` here is that decayed rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradStep {
    /// The step's learning rate, after the optimizer's `lr_decay`.
    pub lr: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// RMSprop (PyTorch's `torch.optim.RMSprop`): `v = a v + (1 - a) d d`; centred, `ga =
/// lerp(ga, d, 1 - a)` and the denominator `sqrt(v - ga ga) + eps`, else `sqrt(v) + eps`;
/// with momentum `b = mu b + d / den` and `p -= lr b`, else `p -= lr d / den`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmspropStep {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant `a` of the averages.
    pub alpha: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor `mu`; a buffer when positive.
    pub momentum: f64,
    /// Centred: a buffer of the gradient's average.
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// Adadelta (PyTorch's `torch.optim.Adadelta`): `v = rho v + (1 - rho) d d`,
/// `delta = sqrt(u + eps) / sqrt(v + eps) * d`, `u = rho u + (1 - rho) delta delta`,
/// `p -= lr delta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdadeltaStep {
    /// Scale of the delta.
    pub lr: f64,
    /// Smoothing constant of both averages.
    pub rho: f64,
    /// Added inside the square roots.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// NAdam at step `t` (PyTorch's `torch.optim.NAdam`): with decoupled decay `p *= 1 - lr wd`
/// first; `m = lerp(m, d, 1 - b1)`, `v = b2 v + (1 - b2) d d`,
/// `den = sqrt(v / (1 - b2^t)) + eps`, then
/// `p -= lr (1 - mu) / (1 - mu_product) * d / den` and
/// `p -= lr mu_next / (1 - mu_product mu_next) * m / den`. The momentum schedule (`mu`,
/// `mu_next`, and `mu_product`, the product of every step's `mu` so far) is the optimizer's
/// host state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NadamStep {
    /// Learning rate.
    pub lr: f64,
    /// `(b1, b2)`.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay: in the gradient, or decoupled.
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW's).
    pub decoupled: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// The step count `t` (1 at the first step).
    pub step: u64,
    /// This step's momentum coefficient.
    pub mu: f64,
    /// The next step's momentum coefficient.
    pub mu_next: f64,
    /// The product of the momentum coefficients up to this step's.
    pub mu_product: f64,
}

/// RAdam at step `t` (PyTorch's `torch.optim.RAdam`): with decoupled decay `p *= 1 - lr wd`
/// first; `m = lerp(m, d, 1 - b1)`, `v = b2 v + (1 - b2) d d`; then, once the variance is
/// rectified (`rho_t > 5`), `p -= lr r_t sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`,
/// and before that `p -= lr / (1 - b1^t) * m` (momentum SGD with bias correction).
/// [`RadamStep::update`] gives the coefficient and the branch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadamStep {
    /// Learning rate.
    pub lr: f64,
    /// `(b1, b2)`.
    pub betas: (f64, f64),
    /// Added to `sqrt(v)`.
    pub eps: f64,
    /// Weight decay: in the gradient, or decoupled.
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW's).
    pub decoupled: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// The step count `t` (1 at the first step).
    pub step: u64,
}

impl RadamStep {
    /// The step's update of the parameter as `p -= coefficient * m / (sqrt(v) + eps)` when the
    /// `bool` is true (the variance is rectified) or `p -= coefficient * m` when it is false,
    /// in f64 with PyTorch's formulas: `rho_inf = 2 / (1 - b2) - 1`,
    /// `rho_t = rho_inf - 2 t b2^t / (1 - b2^t)`, rectified when `rho_t > 5`, with
    /// `r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))`.
    pub fn update(&self) -> (f64, bool) {
        let (b1, b2) = self.betas;
        let t = self.step as f64;
        let bias1 = 1.0 - b1.powf(t);
        let bias2 = 1.0 - b2.powf(t);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bias2;
        if rho_t > 5.0 {
            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            (self.lr * rect * bias2.sqrt() / bias1, true)
        } else {
            (self.lr / bias1, false)
        }
    }
}

/// Rprop (PyTorch's `torch.optim.Rprop`): `s = sign(d prev)`; `step_size *= etaplus`,
/// `etaminus` or 1 as `s` is positive, negative or zero, then clamped to `step_sizes`;
/// `d = 0` where `s < 0`; `p -= sign(d) step_size`; `prev = d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RpropStep {
    /// `(etaminus, etaplus)`: the step-size factors after a sign flip and a kept sign.
    pub etas: (f64, f64),
    /// `(min, max)` of the step sizes.
    pub step_sizes: (f64, f64),
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// ASGD at one step (PyTorch's `torch.optim.ASGD`): `p *= 1 - lambd eta`, `p -= eta d`, then
/// `ax = p` where `mu` is 1, else `ax += mu (p - ax)`. `eta` and `mu` are the optimizer's host
/// state for this step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsgdStep {
    /// This step's step size.
    pub eta: f64,
    /// This step's averaging weight.
    pub mu: f64,
    /// The decay term.
    pub lambd: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}
