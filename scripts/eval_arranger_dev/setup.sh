#!/usr/bin/env bash
# Builds the arranger-only dev driver in a scratch crate (serde, midly, proptest, criterion: no
# model, no plugin), with its own target dir so it never waits for the main build's lock.
#   scripts/eval_arranger_dev/setup.sh [DIR=/tmp/arr]
# then: ARR_BIN=DIR/target/release/arr NOTES=target/fixtures scripts/eval_arranger.sh target/devset OUT
#       (cd DIR && CARGO_TARGET_DIR=DIR/target cargo test --release --lib)      # arranger tests
#       (cd DIR && CARGO_TARGET_DIR=DIR/target cargo bench --bench arrange)     # cost per minute
# src/arrange and arr.rs are symlinks into the repo, so edits there are picked up on rebuild.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-/tmp/arr}
mkdir -p "$DIR/src/bin"
sed "s#/work/main/benches#$REPO/benches#" "$REPO/scripts/eval_arranger_dev/Cargo.toml.scratch" > "$DIR/Cargo.toml"
cp "$REPO/Cargo.lock" "$DIR/"
ln -sfn "$REPO/src/arrange" "$DIR/src/arrange"
cp "$REPO/src/notes.rs" "$DIR/src/"
printf 'pub mod notes;\npub mod arrange;\n' > "$DIR/src/lib.rs"
ln -sf "$REPO/scripts/eval_arranger_dev/arr.rs" "$DIR/src/bin/arr.rs"
cd "$DIR" && CARGO_TARGET_DIR="$DIR/target" cargo build --release --offline -j1 --bin arr
