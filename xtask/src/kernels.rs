//! `cargo xtask kernels [--check] [-v]`: compiles `cuda/<family>.cu` to committed PTX.
//!
//! Each file becomes `crates/sinew-cuda/kernels/<family>.ptx` (compute_80, PTX ISA <= 9.0, no
//! line info, so the output is byte-for-byte reproducible), then is assembled by ptxas for sm_80
//! and sm_90 with spills treated as errors; a `<family>_sm90.cu` file (Hopper-only instructions)
//! targets compute_90a and is assembled for sm_90a alone. The committed files change only when
//! all pass. `--check` compiles into a scratch folder and fails when a committed file is stale,
//! missing or left over; it does not assemble (ptxas took two thirds of the check's minutes in
//! CI): a committed file that equals what the sources compile to was assembled when
//! `cargo xtask kernels` wrote it, with the same pinned toolchain. `--check --assemble`
//! assembles as well; `-v` prints ptxas register usage.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::nvcc::{Toolchain, find_or_fetch, run_capture, workspace_root};

/// Architectures every PTX file must assemble for.
const SM_TARGETS: [&str; 2] = ["sm_80", "sm_90"];

/// The virtual architecture a kernel file compiles for and the GPUs its PTX must assemble for:
/// compute_80 for every GPU since the A100, except `*_sm90.cu` files (wgmma and other
/// instructions of sm_90a, loaded only on compute capability 9.0).
fn targets(src: &Path) -> (&'static str, &'static [&'static str]) {
    let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem.ends_with("_sm90") {
        ("compute_90a", &["sm_90a"])
    } else {
        ("compute_80", &SM_TARGETS)
    }
}

/// Entry point of the `kernels` subcommand.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut check = false;
    let mut assemble_in_check = false;
    let mut verbose = false;
    for a in args {
        match a.as_str() {
            "--check" => check = true,
            "--assemble" => assemble_in_check = true,
            "-v" | "--verbose" => verbose = true,
            other => {
                return Err(format!(
                    "kernels: unknown argument {other:?} (expected --check, --assemble, -v)"
                ));
            }
        }
    }
    let options = CompileOptions {
        assemble: !check || assemble_in_check,
        verbose,
    };
    let root = workspace_root();
    let sources = sources(&root.join("cuda"))?;
    let committed = root.join("crates/sinew-cuda/kernels");
    // Always compile into a scratch folder: PTX that ptxas rejects never reaches the committed one.
    let out_dir = root.join("target/xtask-kernels");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let tools = find_or_fetch()?;
    eprintln!(
        "xtask: compiling {} kernel files with {}",
        sources.len(),
        tools.nvcc.display()
    );
    let outputs = compile_all(&tools, &root, &sources, &out_dir, options)?;
    if check {
        compare(&committed, &outputs)?;
        eprintln!(
            "xtask: committed PTX is up to date ({} files)",
            outputs.len()
        );
    } else {
        std::fs::create_dir_all(&committed).map_err(|e| format!("{}: {e}", committed.display()))?;
        for f in &outputs {
            let dest = committed.join(f.file_name().unwrap_or_default());
            std::fs::copy(f, &dest)
                .map_err(|e| format!("{} -> {}: {e}", f.display(), dest.display()))?;
        }
        remove_stale(&committed, &outputs)?;
        eprintln!(
            "xtask: wrote {} PTX files to {}",
            outputs.len(),
            committed.display()
        );
    }
    Ok(())
}

/// The `.cu` files of the kernel folder, sorted by name.
fn sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(format!("no .cu files in {}", dir.display()));
    }
    Ok(out)
}

fn ptx_name(src: &Path) -> String {
    format!(
        "{}.ptx",
        src.file_stem().and_then(|s| s.to_str()).unwrap_or("kernel")
    )
}

/// What each compilation does after nvcc.
#[derive(Clone, Copy)]
struct CompileOptions {
    /// Assemble the PTX with ptxas for its targets (spills are errors).
    assemble: bool,
    /// Print ptxas's register usage.
    verbose: bool,
}

/// Compiles every source, one per core at a time (each worker takes the next file as it
/// finishes one), and validates each result; the outputs in the order of `sources`.
fn compile_all(
    tools: &Toolchain,
    root: &Path,
    sources: &[PathBuf],
    out_dir: &Path,
    options: CompileOptions,
) -> Result<Vec<PathBuf>, String> {
    let jobs = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, sources.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PathBuf, String>>>> =
        Mutex::new(sources.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(src) = sources.get(i) else { break };
                    let result = compile_one(tools, root, src, out_dir, options);
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(result);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| "a compile thread panicked".to_string())?;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("a compile thread panicked".into())))
        .collect()
}

fn compile_one(
    tools: &Toolchain,
    root: &Path,
    src: &Path,
    out_dir: &Path,
    options: CompileOptions,
) -> Result<PathBuf, String> {
    let out = out_dir.join(ptx_name(src));
    // Relative paths keep absolute directories out of nvcc's messages; the PTX has none either way.
    let rel = src.strip_prefix(root).unwrap_or(src);
    let (arch, sms) = targets(src);
    run_capture(
        Command::new(&tools.nvcc)
            .current_dir(root)
            .args([
                "-ptx",
                &format!("-arch={arch}"),
                "-std=c++17",
                "-O3",
                "-Werror",
                "all-warnings",
                "-I",
                "cuda",
            ])
            .arg(rel)
            .arg("-o")
            .arg(&out),
    )?;
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    check_isa_version(&out, &text)?;
    if options.assemble {
        for sm in sms {
            assemble(tools, &out, sm, options.verbose)?;
        }
    }
    Ok(out)
}

/// Assembles `ptx` for `sm` with ptxas, spills treated as errors.
fn assemble(tools: &Toolchain, ptx: &Path, sm: &str, verbose: bool) -> Result<(), String> {
    let mut cmd = Command::new(&tools.ptxas);
    cmd.arg(format!("-arch={sm}"))
        .args(["-O3", "--warn-on-spills", "--warning-as-error"])
        .arg(ptx)
        .args(["-o", "/dev/null"]);
    if verbose {
        cmd.arg("-v");
    }
    let output = cmd.output().map_err(|e| format!("cannot run ptxas: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ptxas {sm} rejected {}:\n{}",
            ptx.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if verbose {
        eprintln!(
            "--- {} ({sm})\n{}",
            ptx.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Rejects PTX newer than ISA 9.0 (what a CUDA 13.0 driver accepts).
fn check_isa_version(path: &Path, text: &str) -> Result<(), String> {
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix(".version "))
        .ok_or_else(|| format!("{}: no .version line", path.display()))?;
    let mut parts = version
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(u32::MAX));
    let (major, minor) = (parts.next().unwrap_or(u32::MAX), parts.next().unwrap_or(0));
    if (major, minor) > (9, 0) {
        return Err(format!(
            "{}: PTX ISA {version} is newer than 9.0",
            path.display()
        ));
    }
    Ok(())
}

/// Byte comparison of fresh outputs with the committed files (and no extra committed files).
fn compare(committed: &Path, fresh: &[PathBuf]) -> Result<(), String> {
    let mut problems = Vec::new();
    for f in fresh {
        let name = f.file_name().unwrap_or_default();
        let old = committed.join(name);
        match (std::fs::read(f), std::fs::read(&old)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => problems.push(format!("stale: {}", old.display())),
            (_, Err(_)) => problems.push(format!("missing: {}", old.display())),
            (Err(e), _) => problems.push(format!("unreadable {}: {e}", f.display())),
        }
    }
    for extra in leftovers(committed, fresh)? {
        problems.push(format!("no source for: {}", extra.display()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\nrun `cargo xtask kernels` and commit the result",
            problems.join("\n")
        ))
    }
}

/// Committed `.ptx` files whose `.cu` source is gone.
fn leftovers(committed: &Path, fresh: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let names: Vec<_> = fresh.iter().filter_map(|f| f.file_name()).collect();
    let Ok(entries) = std::fs::read_dir(committed) else {
        return Ok(Vec::new());
    };
    Ok(entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ptx"))
        .filter(|p| p.file_name().is_some_and(|n| !names.contains(&n)))
        .collect())
}

fn remove_stale(committed: &Path, fresh: &[PathBuf]) -> Result<(), String> {
    for extra in leftovers(committed, fresh)? {
        std::fs::remove_file(&extra).map_err(|e| format!("{}: {e}", extra.display()))?;
        eprintln!("xtask: removed {}", extra.display());
    }
    Ok(())
}
