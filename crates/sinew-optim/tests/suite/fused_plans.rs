//! Every optimizer offers its step as one fused kernel ([`UpdateRule::fused`]) whose buffers
//! are the rule's own state buffers, as many as the step updates, so a device with the kernels
//! (CUDA) runs a whole group's step in one multi-tensor launch; all but Adafactor, whose step
//! needs two norms of each parameter before it can update it, so it is not one elementwise
//! kernel: on such a device it runs as three launches a parameter that keep the norms there
//! (`Tensor::fused_adafactor_`, called from its update). The kernels' values are checked against the
//! in-place rules on the GPU (or its emulator) by the facade's `gpu_optim` test.

use std::collections::BTreeMap;

use sinew_optim::{
    AdadeltaConfig, AdadeltaRule, AdafactorConfig, AdafactorRule, AdagradConfig, AdagradRule,
    AdamConfig, AdamRule, AdamWRule, AdamaxRule, AsgdConfig, AsgdRule, NadamConfig, NadamRule,
    RadamConfig, RadamRule, RmspropConfig, RmspropRule, RpropConfig, RpropRule, SgdConfig, SgdRule,
    UpdateRule,
};
use sinew_tensor::{AdafactorStep, DType, Device, FusedStep, RadamStep, Tensor};

/// Checks `R`'s fused plan under `config` at steps 1 and 2: present, naming `R`'s buffers in
/// their declared order, as many as the step updates. Returns the first step's plan.
fn plan<R: UpdateRule>(config: R::Config) -> FusedStep {
    let mut scalars = BTreeMap::new();
    let declared: Vec<&str> = R::buffers(&config).into_iter().map(|(n, _)| n).collect();
    let mut first = None;
    for step in 1..=2 {
        R::advance(&config, step, &mut scalars);
        let (fused, names) = R::fused(&config, step, &scalars)
            .unwrap_or_else(|| panic!("{} has no fused step", R::NAME));
        assert_eq!(names, declared.as_slice(), "{}: buffers", R::NAME);
        assert_eq!(
            fused.num_buffers(),
            names.len(),
            "{}: buffer count",
            R::NAME
        );
        first.get_or_insert(fused);
    }
    first.expect("two steps ran")
}

#[test]
fn every_optimizer_has_a_fused_step_over_its_own_buffers() {
    let sgd = plan::<SgdRule>(SgdConfig::new(0.1).momentum(0.9));
    assert!(matches!(sgd, FusedStep::Sgd(s) if s.first && s.momentum == 0.9));
    assert_eq!(plan::<SgdRule>(SgdConfig::new(0.1)).num_buffers(), 0);
    for amsgrad in [false, true] {
        let adam = plan::<AdamRule>(AdamConfig::new(1e-3).amsgrad(amsgrad));
        assert!(matches!(adam, FusedStep::Adam(a) if !a.decoupled && a.amsgrad == amsgrad));
        let adamw = plan::<AdamWRule>(AdamConfig::adamw(1e-3).amsgrad(amsgrad));
        assert!(matches!(adamw, FusedStep::Adam(a) if a.decoupled && a.step == 1));
    }
    assert!(matches!(
        plan::<AdamaxRule>(AdamConfig::new(2e-3)),
        FusedStep::Adamax(_)
    ));
    let adagrad = plan::<AdagradRule>(AdagradConfig {
        lr_decay: 0.5,
        ..AdagradConfig::default()
    });
    // The first step's learning rate is not decayed yet.
    assert!(matches!(adagrad, FusedStep::Adagrad(a) if a.lr == 1e-2));
    for (momentum, centered, buffers) in [
        (0.0, false, 1),
        (0.9, false, 2),
        (0.0, true, 2),
        (0.9, true, 3),
    ] {
        let rmsprop = plan::<RmspropRule>(RmspropConfig {
            momentum,
            centered,
            ..RmspropConfig::default()
        });
        assert_eq!(rmsprop.num_buffers(), buffers);
    }
    assert!(matches!(
        plan::<AdadeltaRule>(AdadeltaConfig::default()),
        FusedStep::Adadelta(_)
    ));
    let nadam = plan::<NadamRule>(NadamConfig::default());
    let FusedStep::Nadam(n) = nadam else {
        panic!("NAdam's plan is {nadam:?}")
    };
    // mu_product after step 1 is mu_1 (rounded to f32 as PyTorch keeps it).
    assert_eq!(n.mu_product, (n.mu as f32) as f64);
    assert!(n.mu < n.mu_next && n.mu_next < 0.9);
    let radam = plan::<RadamRule>(RadamConfig::new(1e-2).weight_decay(0.1));
    let FusedStep::Radam(r) = radam else {
        panic!("RAdam's plan is {radam:?}")
    };
    assert!(r.step == 1 && !r.decoupled && r.weight_decay == 0.1);
    assert!(matches!(
        plan::<RpropRule>(RpropConfig::default()),
        FusedStep::Rprop(r) if r.etas == (0.5, 1.2)
    ));
    // The first step's eta is the learning rate in f32 (PyTorch's scalar tensor); mu is 1.
    let asgd = plan::<AsgdRule>(AsgdConfig::default());
    assert!(matches!(asgd, FusedStep::Asgd(a) if a.eta == 1e-2f32 as f64 && a.mu == 1.0));
    // Adafactor: no one-kernel step (its update calls `fused_adafactor_`'s three launches).
    let scalars = BTreeMap::new();
    assert!(AdafactorRule::fused(&AdafactorConfig::default(), 1, &scalars).is_none());
}

/// RAdam's rectification switches on at the step where `rho_t` first exceeds 5 (step 6 with
/// b2 = 0.999, where `rho_t` is about 5.994), momentum SGD with bias correction before.
#[test]
fn radam_rectifies_once_rho_t_exceeds_five() {
    let at = |step| RadamStep {
        step,
        ..plan_radam()
    };
    let (before, rectified) = at(5).update();
    assert!(!rectified);
    assert_eq!(before, 1e-2 / (1.0 - 0.9f64.powf(5.0)));
    let (after, rectified) = at(6).update();
    assert!(rectified);
    // lr * r_t * sqrt(1 - b2^t) / (1 - b1^t), with r_t from PyTorch's formula.
    let (b2, t) = (0.999f64, 6.0);
    let rho_inf = 2.0 / (1.0 - b2) - 1.0;
    let rho_t = rho_inf - 2.0 * t * b2.powf(t) / (1.0 - b2.powf(t));
    assert!((rho_t - 5.994).abs() < 1e-3);
    let r_t = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        .sqrt();
    let want = 1e-2 * r_t * (1.0 - b2.powf(t)).sqrt() / (1.0 - 0.9f64.powf(t));
    assert!((after - want).abs() <= 1e-15 * want, "{after} vs {want}");
    // b2 below 0.6: rho_inf <= 5, never rectified.
    let young = RadamStep {
        betas: (0.9, 0.5),
        ..at(1000)
    };
    assert!(!young.update().1);
}

fn plan_radam() -> RadamStep {
    match plan::<RadamRule>(RadamConfig::new(1e-2)) {
        FusedStep::Radam(r) => r,
        other => panic!("RAdam's plan is {other:?}"),
    }
}

#[test]
fn the_cpu_runs_fused_steps_as_separate_ops() {
    let cpu = Device::cpu();
    let p = Tensor::ones([3], DType::F32, &cpu).unwrap();
    let g = Tensor::ones([3], DType::F32, &cpu).unwrap();
    let m = Tensor::zeros([3], DType::F32, &cpu).unwrap();
    let step = plan::<AdamRule>(AdamConfig::new(1e-3));
    // No kernel on the CPU: nothing written, the rule's in-place ops run instead.
    assert!(!p.fused_step_(&step, &[&m, &m], &g).unwrap());
    assert_eq!(p.to_vec::<f32>().unwrap(), [1.0; 3]);
    let err = p.fused_step_(&step, &[&m], &g).unwrap_err().to_string();
    assert!(err.contains("expects 2 state buffers, got 1"), "{err}");
}

#[test]
fn the_cpu_runs_adafactor_as_tensor_ops() {
    let cpu = Device::cpu();
    let p = Tensor::ones([2, 3], DType::F32, &cpu).unwrap();
    let g = Tensor::ones([2, 3], DType::F32, &cpu).unwrap();
    let row = Tensor::zeros([2, 1], DType::F32, &cpu).unwrap();
    let col = Tensor::zeros([1, 3], DType::F32, &cpu).unwrap();
    let step = AdafactorStep {
        beta: 1.0,
        rho: 1e-2,
        eps1: 1e-30,
        eps2: 1e-3,
        d: 1.0,
        shrink: 1.0,
        maximize: false,
    };
    // No kernels on the CPU: nothing written, the rule's tensor ops run instead.
    assert!(!p.fused_adafactor_(&step, &[&row, &col], &g).unwrap());
    assert_eq!(p.to_vec::<f32>().unwrap(), [1.0; 6]);
    assert_eq!(row.to_vec::<f32>().unwrap(), [0.0; 2]);
    // Buffers of another shape (here a transposed pair) are an error, on every device.
    let err = p
        .fused_adafactor_(&step, &[&col, &row], &g)
        .unwrap_err()
        .to_string();
    assert!(err.contains("buffers of dims [[2, 1], [1, 3]]"), "{err}");
    let err = p
        .fused_adafactor_(&step, &[&row], &g)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fused_adafactor_"), "{err}");
}
