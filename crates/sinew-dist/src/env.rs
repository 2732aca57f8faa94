//! The launcher's environment: who started this process, as which rank of how many, and the
//! process group that follows from it ([`init_process_group`]).
//!
//! Read, in order: OpenMPI's `mpirun` (`OMPI_COMM_WORLD_RANK`, `_SIZE`, `_LOCAL_RANK`), MPICH and
//! Slurm's PMI (`PMI_RANK`, `PMI_SIZE`), and `torchrun`'s `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! `MASTER_ADDR`, `MASTER_PORT`. When several are set they must agree.

use std::time::Duration;

use sinew_tensor::Result;

use crate::error::DistError;
use crate::group::{DEFAULT_TIMEOUT, ProcessGroup};

/// What started this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// `mpirun`/`mpiexec` (OpenMPI, MPICH) or Slurm with PMI.
    Mpi,
    /// `torchrun`-style variables only (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`).
    Torchrun,
}

/// This process's place in a launched job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchInfo {
    /// The launcher.
    pub launcher: Launcher,
    /// Rank in the job.
    pub rank: usize,
    /// Processes in the job.
    pub world_size: usize,
    /// Rank among the processes on this machine (which GPU to use).
    pub local_rank: usize,
    /// `MASTER_ADDR:MASTER_PORT`, where set (the rendezvous of the NCCL bootstrap).
    pub master: Option<String>,
}

fn parse(vars: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>> {
    match vars(name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            DistError::Launch(format!("{name}={v:?} is not a non-negative integer")).into()
        }),
    }
}

/// Reads the launch environment from `vars` (a lookup such as `std::env::var`); `None` when no
/// launcher's variables are set.
pub fn launch_info_from(vars: &dyn Fn(&str) -> Option<String>) -> Result<Option<LaunchInfo>> {
    let mpi = match (
        parse(vars, "OMPI_COMM_WORLD_RANK")?,
        parse(vars, "OMPI_COMM_WORLD_SIZE")?,
    ) {
        (Some(r), Some(s)) => Some((r, s, parse(vars, "OMPI_COMM_WORLD_LOCAL_RANK")?)),
        _ => match (parse(vars, "PMI_RANK")?, parse(vars, "PMI_SIZE")?) {
            (Some(r), Some(s)) => Some((r, s, parse(vars, "MPI_LOCALRANKID")?)),
            _ => None,
        },
    };
    let torch = match (parse(vars, "RANK")?, parse(vars, "WORLD_SIZE")?) {
        (Some(r), Some(s)) => Some((r, s, parse(vars, "LOCAL_RANK")?)),
        (None, None) => None,
        _ => {
            return Err(
                DistError::Launch("RANK and WORLD_SIZE must be set together".into()).into(),
            );
        }
    };
    let master = match (vars("MASTER_ADDR"), vars("MASTER_PORT")) {
        (Some(a), Some(p)) => Some(format!("{a}:{p}")),
        _ => None,
    };
    let (launcher, (rank, world_size, local)) = match (mpi, torch) {
        (Some(m), Some(t)) if (m.0, m.1) != (t.0, t.1) => {
            return Err(DistError::Launch(format!(
                "mpirun says rank {} of {}, but RANK/WORLD_SIZE say {} of {}",
                m.0, m.1, t.0, t.1
            ))
            .into());
        }
        (Some(m), _) => (Launcher::Mpi, m),
        (None, Some(t)) => (Launcher::Torchrun, t),
        (None, None) => return Ok(None),
    };
    if world_size == 0 || rank >= world_size {
        return Err(DistError::Launch(format!("rank {rank} is not in 0..{world_size}")).into());
    }
    Ok(Some(LaunchInfo {
        launcher,
        rank,
        world_size,
        local_rank: local.unwrap_or(0),
        master,
    }))
}

/// This process's launch environment, `None` outside a launcher.
pub fn launch_info() -> Result<Option<LaunchInfo>> {
    launch_info_from(&|name| std::env::var(name).ok())
}

/// The collective timeout: `SINEW_DIST_TIMEOUT` seconds, or [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("SINEW_DIST_TIMEOUT") {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                DistError::Launch(format!(
                    "SINEW_DIST_TIMEOUT={v:?} is not a positive number of seconds"
                ))
                .into()
            }),
    }
}

/// The transport of a launched job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// MPI (CPU tensors; GPU tensors through host copies).
    Mpi,
    /// NCCL on this rank's GPU (`cuda:LOCAL_RANK`), bootstrapped over the TCP rendezvous.
    Nccl,
}

/// The transport for `info`: `SINEW_DIST_BACKEND` (`mpi` or `nccl`) from `vars` when set, else
/// MPI under `mpirun` and, for `torchrun`-style variables, NCCL when this build has it (feature
/// `nccl`) and MPI otherwise (which then asks for `mpirun`).
pub fn backend_kind_from(
    vars: &dyn Fn(&str) -> Option<String>,
    info: &LaunchInfo,
) -> Result<BackendKind> {
    match vars("SINEW_DIST_BACKEND").as_deref().map(str::trim) {
        Some("mpi") => Ok(BackendKind::Mpi),
        Some("nccl") => Ok(BackendKind::Nccl),
        Some(other) => Err(DistError::Launch(format!(
            "SINEW_DIST_BACKEND={other:?}: expected \"mpi\" or \"nccl\""
        ))
        .into()),
        None if info.launcher == Launcher::Torchrun && cfg!(feature = "nccl") => {
            Ok(BackendKind::Nccl)
        }
        None => Ok(BackendKind::Mpi),
    }
}

/// The process group of this job, from the launcher's environment (PyTorch:
/// `dist.init_process_group()`): MPI under `mpirun`, NCCL for `torchrun`-style variables (or
/// whenever `SINEW_DIST_BACKEND=nccl`), the world of one without a launcher.
///
/// `torchrun`-style variables with the MPI backend name a job with no MPI runtime behind it: an
/// error that says to launch with `mpirun -np N` (or to use NCCL on GPUs).
pub fn init_process_group() -> Result<ProcessGroup> {
    let timeout = timeout_from_env()?;
    let Some(info) = launch_info()? else {
        return ProcessGroup::single();
    };
    match backend_kind_from(&|name| std::env::var(name).ok(), &info)? {
        BackendKind::Nccl => init_nccl(info, timeout),
        BackendKind::Mpi if info.launcher == Launcher::Mpi => init_mpi(info, timeout),
        BackendKind::Mpi if info.world_size == 1 => ProcessGroup::single(),
        BackendKind::Mpi => Err(DistError::Launch(format!(
            "RANK={} WORLD_SIZE={} without mpirun: the CPU backend is MPI, so launch with \
             `mpirun -np {} ...`; on GPUs use NCCL (build with `--features nccl`, \
             SINEW_DIST_BACKEND=nccl)",
            info.rank, info.world_size, info.world_size
        ))
        .into()),
    }
}

#[cfg(feature = "nccl")]
fn init_nccl(info: LaunchInfo, timeout: Duration) -> Result<ProcessGroup> {
    ProcessGroup::new(
        move || {
            crate::NcclBackend::init(&info, timeout).map(|b| Box::new(b) as Box<dyn crate::Backend>)
        },
        timeout,
    )
}

#[cfg(not(feature = "nccl"))]
fn init_nccl(info: LaunchInfo, _timeout: Duration) -> Result<ProcessGroup> {
    Err(DistError::Backend {
        backend: "nccl",
        msg: format!(
            "rank {} of {} asked for NCCL, but this build has no NCCL backend: rebuild with \
             `--features nccl` (needs the CUDA driver) and install libnccl.so.2 \
             (`pip install nvidia-nccl-cu12`, then SINEW_NCCL_LIB=.../nvidia/nccl/lib/libnccl.so.2)",
            info.rank, info.world_size
        ),
    }
    .into())
}

#[cfg(feature = "mpi")]
fn init_mpi(info: LaunchInfo, timeout: Duration) -> Result<ProcessGroup> {
    let group = ProcessGroup::new(
        || Ok(Box::new(crate::MpiBackend::init()?) as Box<dyn crate::Backend>),
        timeout,
    )?;
    if (group.rank(), group.world_size()) != (info.rank, info.world_size) {
        return Err(DistError::Launch(format!(
            "the environment says rank {} of {}, MPI says {} of {}",
            info.rank,
            info.world_size,
            group.rank(),
            group.world_size()
        ))
        .into());
    }
    Ok(group)
}

#[cfg(not(feature = "mpi"))]
fn init_mpi(info: LaunchInfo, _timeout: Duration) -> Result<ProcessGroup> {
    Err(DistError::Backend {
        backend: "mpi",
        msg: format!(
            "launched by mpirun as rank {} of {}, but built without MPI: rebuild with \
             `--features mpi` (needs libopenmpi-dev and libclang-dev)",
            info.rank, info.world_size
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn each_launcher_is_recognised() {
        assert_eq!(launch_info_from(&env(&[])).unwrap(), None);
        let ompi = launch_info_from(&env(&[
            ("OMPI_COMM_WORLD_RANK", "2"),
            ("OMPI_COMM_WORLD_SIZE", "4"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "0"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (ompi.launcher, ompi.rank, ompi.world_size),
            (Launcher::Mpi, 2, 4)
        );
        let torch = launch_info_from(&env(&[
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(torch.launcher, Launcher::Torchrun);
        assert_eq!(torch.local_rank, 1);
        assert_eq!(torch.master.as_deref(), Some("127.0.0.1:29500"));
        let pmi = launch_info_from(&env(&[("PMI_RANK", "0"), ("PMI_SIZE", "3")]))
            .unwrap()
            .unwrap();
        assert_eq!((pmi.rank, pmi.world_size), (0, 3));
    }

    #[test]
    fn the_backend_follows_the_launcher_unless_named() {
        let torch = launch_info_from(&env(&[("RANK", "0"), ("WORLD_SIZE", "2")]))
            .unwrap()
            .unwrap();
        let mpi = launch_info_from(&env(&[
            ("OMPI_COMM_WORLD_RANK", "0"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
        ]))
        .unwrap()
        .unwrap();
        let default_for_torchrun = if cfg!(feature = "nccl") {
            BackendKind::Nccl
        } else {
            BackendKind::Mpi
        };
        assert_eq!(
            backend_kind_from(&env(&[]), &torch).unwrap(),
            default_for_torchrun
        );
        assert_eq!(
            backend_kind_from(&env(&[]), &mpi).unwrap(),
            BackendKind::Mpi
        );
        let nccl = env(&[("SINEW_DIST_BACKEND", "nccl")]);
        assert_eq!(backend_kind_from(&nccl, &mpi).unwrap(), BackendKind::Nccl);
        let named_mpi = env(&[("SINEW_DIST_BACKEND", "mpi")]);
        assert_eq!(
            backend_kind_from(&named_mpi, &torch).unwrap(),
            BackendKind::Mpi
        );
        let err = backend_kind_from(&env(&[("SINEW_DIST_BACKEND", "gloo")]), &torch)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected \"mpi\" or \"nccl\""), "{err}");
    }

    #[test]
    fn bad_or_inconsistent_variables_are_errors() {
        let cases: &[&[(&str, &str)]] = &[
            &[("RANK", "one"), ("WORLD_SIZE", "2")],
            &[("RANK", "0")],
            &[("RANK", "2"), ("WORLD_SIZE", "2")],
            &[("RANK", "0"), ("WORLD_SIZE", "0")],
            &[
                ("OMPI_COMM_WORLD_RANK", "0"),
                ("OMPI_COMM_WORLD_SIZE", "2"),
                ("RANK", "1"),
                ("WORLD_SIZE", "2"),
            ],
        ];
        for case in cases {
            let err = launch_info_from(&env(case)).unwrap_err().to_string();
            assert!(err.contains("launch environment"), "{case:?}: {err}");
        }
    }
}
