//! Data-parallel runs under `mpirun` on this machine (loopback): equality with one process,
//! the trainer on rank 0 only with resume, overlap of communication with backward, and a rank
//! that dies or hangs. Needs OpenMPI (`apt-get install openmpi-bin libopenmpi-dev`).
#![cfg(feature = "mpi")]

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One `mpirun` at a time: the machine has two cores and MPI ranks poll while they wait.
static SERIAL: Mutex<()> = Mutex::new(());

struct Run {
    ok: bool,
    output: String,
    seconds: f64,
}

fn mpirun(np: usize, args: &[&str], env: &[(&str, &str)]) -> Run {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "-np",
        &np.to_string(),
        env!("CARGO_BIN_EXE_sinew-dist-check"),
    ])
    .args(args)
    // OpenMPI: allow root (CI containers), more ranks than cores, and yield while waiting.
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
    .env("OMPI_MCA_mpi_yield_when_idle", "1")
    .envs(env.iter().copied())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .expect("mpirun not found: install openmpi-bin and libopenmpi-dev");
    // A hang is a failure of the test, never of the test run.
    while child.try_wait().expect("wait for mpirun").is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("mpirun {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("mpirun output");
    Run {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn number_after(text: &str, key: &str) -> f64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in:\n{text}"))
        + key.len();
    text[at..]
        .split_whitespace()
        .next()
        .and_then(|w| w.trim_end_matches([',', ')']).parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in:\n{text}"))
}

#[test]
fn two_and_four_ranks_train_the_same_weights_as_one_process() {
    for np in [2, 4] {
        let run = mpirun(np, &["equality", "--steps", "20", "--batch", "8"], &[]);
        assert!(run.ok, "{}", run.output);
        assert!(
            run.output
                .contains(&format!("world size {np}, batch 8 per rank vs {}", 8 * np))
        );
        let diff = number_after(&run.output, "max weight difference");
        assert!(diff <= 1e-6, "np {np}: weights differ by {diff}");
        assert!(
            number_after(&run.output, "moved by up to") > 1e-3,
            "training did nothing"
        );
    }
}

#[test]
fn every_collective_is_right_on_every_float_dtype() {
    for np in [2, 3] {
        let run = mpirun(np, &["collectives"], &[]);
        assert!(run.ok, "{}", run.output);
        assert!(run.output.contains(&format!(
            "world size {np}: sum, mean, max, broadcast, all_gather on f32/f64/f16/bf16 correct"
        )));
    }
}

#[test]
fn sync_batch_norm_over_ranks_equals_batch_norm_over_the_whole_batch() {
    for np in [2, 4] {
        let run = mpirun(np, &["syncbn"], &[]);
        assert!(run.ok, "{}", run.output);
        let diff = number_after(&run.output, "max difference");
        assert!(diff <= 1e-9, "np {np}: {diff}");
    }
}

#[test]
fn the_trainer_reports_on_rank_zero_only_and_resumes() {
    let dir = std::env::temp_dir().join(format!("sinew-dist-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let run = mpirun(2, &["train", "--dir", d, "--epochs", "2"], &[]);
    assert!(run.ok, "{}", run.output);
    assert_eq!(run.output.matches("epoch 2/2").count(), 1, "{}", run.output);
    let acc0 = number_after(&run.output, "rank 0 val_accuracy");
    assert_eq!(acc0, number_after(&run.output, "rank 1 val_accuracy"));
    assert!(acc0 > 0.7, "val accuracy {acc0}");
    assert!(dir.join("model.safetensors").is_file());
    let resumed = mpirun(2, &["train", "--dir", d, "--epochs", "3", "--resume"], &[]);
    assert!(resumed.ok, "{}", resumed.output);
    assert!(resumed.output.contains("rank 0 resumed at epoch 2"));
    assert!(resumed.output.contains("rank 1 resumed at epoch 2"));
    assert_eq!(resumed.output.matches("epoch 3/3").count(), 1);
    assert!(!resumed.output.contains("epoch 1/3"), "{}", resumed.output);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn predict_gathers_every_ranks_rows_in_the_order_of_one_process() {
    for np in [2, 3] {
        let run = mpirun(np, &["predict", "--examples", "101"], &[]);
        assert!(run.ok, "{}", run.output);
        for rank in 0..np {
            for case in ["padded", "unpadded"] {
                let rows = number_after(&run.output, &format!("rank {rank} predict {case} rows"));
                assert_eq!(rows, 101.0, "{case} on {np} ranks:\n{}", run.output);
            }
            // batch 7, ceil(101 / np) examples per rank, whole batches only.
            let per_rank = 101usize.div_ceil(np) / 7 * 7;
            let rows = number_after(&run.output, &format!("rank {rank} predict drop_last rows"));
            assert_eq!(rows, (per_rank * np) as f64, "{}", run.output);
        }
    }
}

#[test]
fn torchrun_variables_without_mpirun_fail_with_the_launch_command_to_use() {
    let out = Command::new(env!("CARGO_BIN_EXE_sinew-dist-check"))
        .arg("equality")
        .envs([("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")])
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", "29500")
        .output()
        .expect("run sinew-dist-check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("RANK=0 WORLD_SIZE=2 without mpirun"),
        "{stderr}"
    );
    assert!(stderr.contains("mpirun -np 2"), "{stderr}");
}

#[test]
fn buckets_are_reduced_while_backward_still_runs() {
    let run = mpirun(2, &["timeline", "--bucket-mb", "1"], &[]);
    assert!(run.ok, "{}", run.output);
    let line = |needle: &str| {
        run.output
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{}", run.output))
    };
    // Bucket 0 holds the last layer; it must leave before the first layer's gradient exists.
    assert!(line("BucketLaunched { bucket: 0") < line("GradReady(\"0.weight\")"));
    assert!(line("Synced") > line("BucketReduced(3)"));
}

#[test]
fn a_rank_that_dies_ends_the_job_with_an_error() {
    let run = mpirun(2, &["die", "--rank", "1", "--after", "3"], &[]);
    assert!(!run.ok);
    assert!(run.output.contains("rank 1: exiting"), "{}", run.output);
    assert!(run.seconds < 60.0, "took {} s", run.seconds);
}

#[test]
fn a_rank_that_hangs_makes_the_others_fail_after_the_timeout() {
    let run = mpirun(
        2,
        &["hang", "--rank", "1", "--after", "3"],
        &[("SINEW_DIST_TIMEOUT", "3")],
    );
    assert!(!run.ok);
    assert!(
        run.output.contains("rank 0: all_reduce")
            && run.output.contains("did not complete within 3.0 s"),
        "{}",
        run.output
    );
    assert!(run.seconds < 60.0, "took {} s", run.seconds);
}
