#!/usr/bin/env bash
# Every example in its short mode (`--quick`: few steps, small data), so none can rot.
# Pictures go to a scratch directory (`--out`). Runs the debug build: `cargo test --workspace`
# has built every example already (with the same features, so the build below compiles
# nothing), where a release build took CI a minute to run them 8 s faster.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --workspace --examples
for src in crates/sinew/examples/*.rs; do
    name=$(basename "$src" .rs)
    start=$(date +%s)
    if ! "target/debug/examples/$name" --quick --out "$out" > "$out/$name.log" 2>&1; then
        cat "$out/$name.log"
        echo "example $name failed"
        exit 1
    fi
    printf -- '--- %s (%ss): %s\n' "$name" "$(($(date +%s) - start))" "$(tail -n 1 "$out/$name.log")"
done
echo "examples: all ran"
