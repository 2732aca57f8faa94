//! Finding (or fetching) the pinned CUDA 13.0 compiler: nvcc + ptxas from PyPI wheels.
//!
//! Search order: `$SINEW_NVCC`, `$CUDA_HOME/bin/nvcc`, `nvcc` on `PATH`, then the wheels unpacked
//! under `target/cuda-toolchain/13.0.88`, fetched with `pip download --require-hashes` when missing.
//! Any nvcc whose `--version` is not release 13.0 is rejected: newer ones emit PTX the CUDA 13.0
//! driver (580.x) refuses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolkit release every committed PTX file is generated with.
pub const RELEASE: &str = "release 13.0";

/// The wheels (with their hashes) that make up a CPU-only nvcc 13.0.
const WHEELS: &str = "\
nvidia-cuda-cccl==13.0.85 --hash=sha256:e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649
nvidia-cuda-crt==13.0.88 --hash=sha256:2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-cuda-nvcc==13.0.88 --hash=sha256:56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-nvvm==13.0.88 --hash=sha256:c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
";

/// The nvcc and ptxas binaries of one toolkit.
pub struct Toolchain {
    /// Path of `nvcc`.
    pub nvcc: PathBuf,
    /// Path of `ptxas` (next to nvcc).
    pub ptxas: PathBuf,
}

/// The workspace root (parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Runs a command and returns its stdout, or an error naming the command and its stderr.
pub fn run_capture(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(p) = std::env::var("SINEW_NVCC") {
        out.push(PathBuf::from(p));
    }
    if let Ok(home) = std::env::var("CUDA_HOME") {
        out.push(Path::new(&home).join("bin/nvcc"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        out.extend(std::env::split_paths(&path).map(|d| d.join("nvcc")));
    }
    out
}

fn toolchain_at(nvcc: &Path) -> Option<Toolchain> {
    let version = run_capture(Command::new(nvcc).arg("--version")).ok()?;
    if !version.contains(RELEASE) {
        eprintln!("xtask: ignoring {} (not {RELEASE})", nvcc.display());
        return None;
    }
    let ptxas = nvcc.with_file_name("ptxas");
    ptxas.is_file().then(|| Toolchain {
        nvcc: nvcc.to_path_buf(),
        ptxas,
    })
}

/// Finds a 13.0 nvcc, fetching the wheels into `target/cuda-toolchain` if none is installed.
pub fn find_or_fetch() -> Result<Toolchain, String> {
    for c in candidates() {
        if !c.is_file() {
            continue;
        }
        if let Some(t) = toolchain_at(&c) {
            return Ok(t);
        }
    }
    let dest = workspace_root().join("target/cuda-toolchain/13.0.88");
    let nvcc = dest.join("nvidia/cu13/bin/nvcc");
    if !nvcc.is_file() {
        fetch(&dest)?;
    }
    toolchain_at(&nvcc).ok_or_else(|| format!("{} is not a working nvcc 13.0", nvcc.display()))
}

/// Downloads the pinned wheels with pip (hash-checked) and unpacks them into `dest`.
fn fetch(dest: &Path) -> Result<(), String> {
    let wheels = dest.join("wheels");
    std::fs::create_dir_all(&wheels).map_err(|e| format!("{}: {e}", wheels.display()))?;
    let list = dest.join("nvcc-13.0.txt");
    std::fs::write(&list, WHEELS).map_err(|e| format!("{}: {e}", list.display()))?;
    eprintln!(
        "xtask: fetching nvcc 13.0 wheels (about 100 MiB) into {}",
        dest.display()
    );
    run_capture(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
            ])
            .args([
                "--platform",
                "manylinux2014_x86_64",
                "--require-hashes",
                "-r",
            ])
            .arg(&list)
            .arg("-d")
            .arg(&wheels),
    )
    .map_err(|e| format!("cannot fetch the CUDA 13.0 wheels (needs python3, pip and PyPI): {e}"))?;
    let entries = std::fs::read_dir(&wheels).map_err(|e| format!("{}: {e}", wheels.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "whl") {
            // unzip keeps the exec bits that nvcc, cicc and ptxas need.
            run_capture(
                Command::new("unzip")
                    .args(["-q", "-o"])
                    .arg(&path)
                    .arg("-d")
                    .arg(dest),
            )?;
        }
    }
    for dir in ["nvidia/cu13/bin", "nvidia/cu13/nvvm/bin"] {
        let dir = dest.join(dir);
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
        {
            use std::os::unix::fs::PermissionsExt;
            let path = entry.path();
            if path.is_file() {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
    Ok(())
}
