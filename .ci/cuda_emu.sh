#!/usr/bin/env bash
# The GPU tests on the CPU (run by .ci/cuda.sh after `cargo xtask cuda-emu`): every kernel of
# cuda/ compiled for the host and run by an emulated driver, which checks the kernels' logic and
# the host code around them without a GPU. The emulator runs a launch's blocks one after another
# on one core, so the test binaries (built once, then run directly) go in two lanes side by side
# of about the same length; each lane's log is printed when both are done.
# Expects CUDA_LIBRARY_PATH (the stub driver) and `features` as cuda.sh sets them.
set -euo pipefail
cd "$(dirname "$0")/.."
features=${features:-cuda,sinew-autograd/testing}
emu="$PWD/target/cuda-emu/lib64"

# The test binaries' paths, from cargo's JSON messages ("executable" of each test target).
exes=$(
    {
        cargo test -p sinew-cuda --features "$features" --no-run --message-format=json
        cargo test -p sinew --features "$features" --test gpu_optim --test gpu_layers \
            --test gpu_loss --test gpu_step --test gpu_scaler --test gpu_trainer --test gpu_models --test gpu_functional \
            --no-run --message-format=json
    } | grep -o '"executable":"[^"]*/deps/[^"]*"' | sed 's/"executable":"\(.*\)"/\1/'
)

# Runs the test binary `$1` on the emulator with the test arguments that follow (after any
# VAR=value settings given first as `env` takes them).
emulate() {
    local settings=()
    while [[ "$1" == *=* ]]; do
        settings+=("$1")
        shift
    done
    local name=$1 exe
    shift
    exe=$(grep -E "/${name}-[0-9a-f]+$" <<<"$exes" | head -n 1 || true)
    [ -n "$exe" ] || { echo "no test binary $name"; return 1; }
    echo "--- $name ${settings[*]} $*"
    env "${settings[@]}" LD_LIBRARY_PATH="$emu" "$exe" --include-ignored --test-threads=1 "$@"
}

# sinew-cuda's GPU tests (gpu_custom is left out: it runs a test's own PTX, which only a GPU can).
gpu_tests=$(find crates/sinew-cuda/tests -maxdepth 1 -name 'gpu_*.rs' ! -name gpu_custom.rs \
    -printf '%f\n' | sed 's/\.rs$//' | sort)
# The two GEMM suites are the longest: they start lane 2, with the convolutions, the random
# fills, the per-channel kernels and the index kernels, so that the lanes take about as long
# (lane 1's 30-odd runs, lane 2's 10: about 2 min each on the 2-core machine).
long="gpu_matmul gpu_matmul_sm90 gpu_conv gpu_random gpu_channel gpu_index"

lane1() {
    for t in $gpu_tests; do
        [[ " $long " == *" $t "* ]] || emulate "$t"
    done
    # The kernels whose blocks meet (the last block of a channel, a weight tile or the batch adds
    # the others' partial sums: tickets.cuh; the first bad index wins a failure slot) with their
    # blocks run in shuffled and in reverse order, as a GPU may run them: the emulator otherwise
    # runs them in grid order, where the last to arrive is always the last in the grid.
    for order in shuffle reverse; do
        for t in gpu_channel gpu_xent gpu_index gpu_range_check gpu_conv_epilogue gpu_running_stats; do
            emulate SINEW_EMU_BLOCK_ORDER=$order "$t"
        done
        emulate SINEW_EMU_BLOCK_ORDER=$order gpu_conv weight_gradient
    done
    # The fused optimizer steps through sinew-optim, batch norm and cross entropy through
    # sinew-nn, the loss scaler's steps skipped on the device, the Trainer's steps with metrics,
    # and whole MLP and LeNet-5 steps' kernels and synchronisations (the facade's GPU tests that
    # the emulator runs in seconds).
    emulate gpu_optim
    emulate gpu_scaler
    emulate gpu_trainer
    emulate gpu_layers
    emulate gpu_functional
    emulate gpu_loss
    emulate gpu_step
    # The whole models' memory over 1,000 steps, which reads no kernel's result: with the
    # kernels skipped it is the host's allocations alone, in seconds (gpu_models' loss curves
    # are for a real GPU).
    emulate SINEW_EMU_SKIP_KERNELS=1 gpu_models memory_is_flat
}

lane2() {
    for t in $long; do
        emulate "$t"
    done
    # The exact-shape GEMM tests again as on an A100 (compute capability 8.0; the emulator
    # reports 9.0, an H100's): those shapes then take the mma.sync kernel's 128-row tiles instead
    # of the wgmma kernel (gpu_matmul's other shapes run the same kernels either way).
    for t in gpu_matmul_spec gpu_matmul_sm90; do
        emulate SINEW_EMU_COMPUTE_CAPABILITY=8.0 "$t"
    done
    # The Hopper GEMM with its pipeline stalled (the emulator's TMA copies never complete), then
    # with its launches failing: it must end, not hang, fail its first-use check and leave the
    # product to the mma.sync kernel.
    for fault in SINEW_EMU_LOSE_TMA=1 SINEW_EMU_FAIL_LAUNCH=matmul_sm90; do
        emulate "$fault" gpu_matmul_sm90 a_failing
    done
}

logs=$(mktemp -d)
lane1 >"$logs/lane1.log" 2>&1 &
first=$!
lane2 >"$logs/lane2.log" 2>&1 &
second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
for lane in lane1 lane2; do
    echo "=== emulated GPU tests, $lane"
    cat "$logs/$lane.log"
done
rm -rf "$logs"
[ "$status" -eq 0 ] || echo "emulated GPU tests failed (see the lanes above)"
exit "$status"
