#!/usr/bin/env bash
# The Debian packages CI needs besides Rust: OpenMPI with its headers and libclang (bindgen) for
# the distributed step (.ci/dist.sh), g++ for the CUDA emulator (.ci/cuda.sh). Installs them
# when one is missing, with one `apt-get update`; a no-op otherwise. .ci/run starts it in the
# background at the beginning, so the download and unpacking overlap the first builds; the
# steps that need the packages run it again (after waiting for that run), which finishes an
# install that failed there and shows its error.
set -euo pipefail

missing=false
command -v mpirun >/dev/null && command -v mpicc >/dev/null || missing=true
compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || missing=true
command -v c++ >/dev/null || missing=true
if $missing; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
        openmpi-bin libopenmpi-dev libclang-dev g++
fi
