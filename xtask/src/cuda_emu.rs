//! `cargo xtask cuda-emu`: a `libcuda.so.1` that runs Sinew's kernels on the CPU, so the GPU
//! tests (the `#[ignore = "needs a CUDA GPU"]` ones) check the kernels' logic and the host code
//! around them on a machine without a GPU.
//!
//! Every `cuda/<family>.cu` is compiled by the host C++ compiler (`CXX`, default `c++`) with
//! `cuda/emu/include` (the device built-ins, half types and the tensor-core instructions
//! on the CPU) and registered under the kernel names of its committed PTX; `cuda/emu/driver.cpp`
//! implements the driver API over host memory and `cuda/emu/fibers.cpp` runs each launch's
//! blocks, their threads as fibers. The device reports compute capability 9.0 (so the Hopper
//! kernels run, their wgmma, mbarriers and TMA loads emulated in
//! `cuda/emu/include/emu_wgmma.h` and `fibers.cpp`), or what
//! `SINEW_EMU_COMPUTE_CAPABILITY` says ("8.0": an A100's kernel choices). Entry
//! points it does not implement print their name and fail. Kernels a test loads from its own PTX
//! (a custom module) cannot run here. `cuda/emu/nccl.cpp` becomes a `libnccl.so.2` whose
//! communicators have one rank, for sinew-dist's NCCL backend. Run a GPU test binary with
//! `LD_LIBRARY_PATH=target/cuda-emu/lib64` (built against the stub of `cargo xtask cuda-stub`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::cuda_stub::driver_entry_points;
use crate::nvcc::{run_capture, workspace_root};

/// Host compiler flags: IEEE arithmetic without contraction, as the kernels' explicit roundings
/// assume; `SINEW_EMU` selects the emulated tensor-core instructions in `gemm_tc.cuh`; no note
/// on passing the 64-byte-aligned tensor maps by value (an ABI change of GCC 4.6).
const FLAGS: &[&str] = &[
    "-std=c++20",
    "-O2",
    "-fPIC",
    "-ffp-contract=off",
    "-fno-fast-math",
    "-fno-strict-aliasing",
    "-DSINEW_EMU",
    "-Wno-unknown-pragmas",
    "-Wno-psabi",
];

/// Flags for `libcuda.so.1` alone: its fibers' thread-locals are read at every switch, and the
/// library is always loaded with the test binary (it is a `DT_NEEDED` of every CUDA build), so
/// the initial-exec model reads them at a fixed offset instead of calling `__tls_get_addr`.
/// (`libnccl.so.2` is opened with `dlopen` and keeps the default model.)
const DRIVER_FLAGS: &[&str] = &["-ftls-model=initial-exec"];

/// `-mf16c` where the host has F16C (every x86-64 CPU since 2012): half-to-float and
/// float-to-half conversions become one instruction instead of a libgcc call, with the same
/// results (exact widening; round-to-nearest-even narrowing; the compiler still narrows a
/// double in one rounding, in libgcc). Elsewhere the library calls stay.
fn f16c_flags() -> &'static [&'static str] {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has_f16c = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "f16c"));
    if has_f16c { &["-mf16c"] } else { &[] }
}

/// Entry point of the `cuda-emu` subcommand.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("cuda-emu: unexpected argument {a:?}"));
    }
    let root = workspace_root();
    let out = root.join("target/cuda-emu");
    let (obj, lib64) = (out.join("obj"), out.join("lib64"));
    for dir in [&obj, &lib64] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let mut sources = Vec::new();
    for family in families(&root)? {
        let wrapper = obj.join(format!("{family}.cpp"));
        write(&wrapper, &registration(&root, &family)?)?;
        sources.push(wrapper);
    }
    for part in ["driver", "fibers"] {
        let unit = obj.join(format!("{part}.cpp"));
        let source = root.join(format!("cuda/emu/{part}.cpp"));
        write(&unit, &format!("#include \"{}\"\n", source.display()))?;
        sources.push(unit);
    }
    let stubs = obj.join("stubs.cpp");
    write(&stubs, &stub_source(&root)?)?;
    sources.push(stubs);
    let f16c = f16c_flags();
    // Two compilations at a time: the kernel files are large and the machines small.
    let mut objects = Vec::new();
    for pair in sources.chunks(2) {
        let children: Vec<(PathBuf, Child)> = pair
            .iter()
            .map(|src| {
                let o = src.with_extension("o");
                let child = Command::new(&cxx)
                    .args(FLAGS)
                    .args(DRIVER_FLAGS)
                    .args(f16c)
                    .arg("-I")
                    .arg(root.join("cuda/emu/include"))
                    .arg("-I")
                    .arg(root.join("cuda"))
                    .arg("-c")
                    .arg(src)
                    .arg("-o")
                    .arg(&o)
                    .spawn()
                    .map_err(|e| format!("cannot run {cxx}: {e}"))?;
                Ok((o, child))
            })
            .collect::<Result<_, String>>()?;
        for (o, mut child) in children {
            let status = child.wait().map_err(|e| format!("{cxx}: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "{cxx} failed on {}",
                    o.with_extension("cpp").display()
                ));
            }
            objects.push(o);
        }
    }
    let lib = lib64.join("libcuda.so.1");
    run_capture(
        Command::new(&cxx)
            .args(["-shared", "-Wl,-soname,libcuda.so.1", "-o"])
            .arg(&lib)
            .args(&objects)
            .args(["-lpthread", "-Wl,--no-undefined"]),
    )?;
    let link = lib64.join("libcuda.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("libcuda.so.1", &link)
        .map_err(|e| format!("{}: {e}", link.display()))?;
    let nccl = lib64.join("libnccl.so.2");
    run_capture(
        Command::new(&cxx)
            .args(FLAGS)
            .args(f16c)
            .args(["-shared", "-Wl,-soname,libnccl.so.2", "-o"])
            .arg(&nccl)
            .arg(root.join("cuda/emu/nccl.cpp")),
    )?;
    eprintln!("xtask: wrote {} (the CUDA emulator)", lib.display());
    eprintln!(
        "xtask: wrote {} (NCCL for worlds of one rank on it)",
        nccl.display()
    );
    eprintln!(
        "  run GPU test binaries with LD_LIBRARY_PATH={} (built against cargo xtask cuda-stub)",
        lib64.display()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The kernel families: `cuda/<family>.cu`, sorted.
fn families(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("cuda");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".cu").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// A translation unit compiling `cuda/<family>.cu` for the host and registering each kernel its
/// committed PTX declares (`.visible .entry NAME(`).
fn registration(root: &Path, family: &str) -> Result<String, String> {
    let ptx_path = root.join(format!("crates/sinew-cuda/kernels/{family}.ptx"));
    let ptx =
        std::fs::read_to_string(&ptx_path).map_err(|e| format!("{}: {e}", ptx_path.display()))?;
    let mut text = format!(
        "#include \"emu_runtime.h\"\n#include \"{}\"\n#include \"{}\"\n",
        root.join(format!("cuda/{family}.cu")).display(),
        root.join("cuda/emu/registry.h").display()
    );
    for line in ptx.lines() {
        if let Some(rest) = line.strip_prefix(".visible .entry ") {
            let name = rest.trim_end_matches('(').trim();
            text.push_str(&format!("EMU_REGISTER({name})\n"));
        }
    }
    Ok(text)
}

/// Failing definitions of the driver entry points `driver.cpp` does not implement.
fn stub_source(root: &Path) -> Result<String, String> {
    let driver_path = root.join("cuda/emu/driver.cpp");
    let driver = std::fs::read_to_string(&driver_path)
        .map_err(|e| format!("{}: {e}", driver_path.display()))?;
    let implemented = |name: &str| driver.contains(&format!("CUresult {name}("));
    let mut text = String::from("#include <cstdio>\nextern \"C\" {\n");
    for name in driver_entry_points(root)? {
        if !implemented(&name) {
            text.push_str(&format!(
                "int {name}() {{ std::fputs(\"cuda-emu: {name} is not emulated\\n\", stderr); \
                 return 801; }}\n"
            ));
        }
    }
    text.push_str("}\n");
    Ok(text)
}
