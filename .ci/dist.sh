#!/usr/bin/env bash
# Data-parallel checks under mpirun on this machine: installs OpenMPI from the Debian packages
# when missing (.ci/packages.sh), lints and tests sinew-dist with its MPI backend (2 and 4 ranks
# over loopback), and trains the CLI's default model with 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/packages.sh
mpirun --version | sed -n 1p

# OpenMPI in containers: allow root, more ranks than cores, and yield while waiting.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1

# With the `testing` feature the workspace test build turned on (sinew-nn's, which turns on
# sinew-autograd's), so the crates below sinew-dist are reused from it instead of rebuilt: cargo
# resolves features per invocation. `pkg/feature` must name a dependency of a selected package,
# hence sinew-dist beside sinew-cli.
features=mpi,sinew-nn/testing
cargo clippy -p sinew-dist -p sinew-cli --features "$features" --all-targets -- -D warnings
cargo test -p sinew-dist --features "$features"
cargo build -p sinew-dist -p sinew-cli --features "$features"
out=$(mpirun -np 2 target/debug/sinew train --epochs 3 --workers 0 2>&1)
echo "$out"
echo "$out" | grep -q "data-parallel: 2 processes (mpi)"
[ "$(echo "$out" | grep -c "^test accuracy")" -eq 1 ]
# An EMA of the weights, data-parallel: every rank averages the same weights, and the average is
# evaluated over all ranks together (one report).
out=$(mpirun -np 2 target/debug/sinew train --epochs 2 --workers 0 --ema 0.9 2>&1)
echo "$out"
[ "$(echo "$out" | grep -c "^EMA test accuracy")" -eq 1 ]
