//! `gradcheck [--cases N] [--op NAME]` (`cargo xtask gradcheck ...`): finite-difference checks of
//! every differentiable op-table entry and every sinew-nn layer and loss, one line per op, then
//! `N ops checked, M failed`.

use sinew_autograd::gradcheck::cases::registry;

/// Runs the gradcheck registry; fails when any op fails.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut cases = 64u32;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--cases" => {
                let n = it.next().ok_or("--cases needs a number")?;
                cases = n
                    .parse()
                    .map_err(|_| format!("--cases: {n:?} is not a number"))?;
            }
            "--op" => only = Some(it.next().ok_or("--op needs a name")?.clone()),
            other => {
                return Err(format!(
                    "gradcheck: unknown argument {other:?}; usage: gradcheck [--cases N] [--op NAME]"
                ));
            }
        }
    }
    let entries: Vec<_> = registry()
        .into_iter()
        .chain(sinew_nn::gradcheck_cases::registry())
        .filter(|e| only.as_deref().is_none_or(|o| o == e.op))
        .collect();
    if entries.is_empty() {
        return Err(format!(
            "gradcheck: no entry named {:?}",
            only.unwrap_or_default()
        ));
    }
    let mut failed = 0;
    for entry in &entries {
        let outcome = (entry.run)(cases);
        let status = if outcome.failure.is_some() {
            "FAIL"
        } else {
            "ok"
        };
        println!(
            "{status:>4}  {:<14} cases {:>4}  max abs err {:>9.2e}  max rel err {:>9.2e}",
            entry.op, outcome.cases, outcome.max_abs_err, outcome.max_rel_err
        );
        if let Some(why) = outcome.failure {
            failed += 1;
            for line in why.lines() {
                println!("        {line}");
            }
        }
    }
    println!("{} ops checked, {failed} failed", entries.len());
    if failed > 0 {
        return Err(format!("gradcheck: {failed} ops failed"));
    }
    Ok(())
}
