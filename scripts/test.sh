#!/usr/bin/env bash
# Every test: installs what they need, builds the bundles once (with the allocation check in
# process()), runs all Rust tests in the release profile (the bundle's profile: one build), the
# dev-set arranger evaluation, and the Ardour host test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
FEATURES=onnxruntime,assert_process_allocs
cargo xtask bundle pianola --release --features $FEATURES
cargo test --release --features $FEATURES --no-fail-fast
scripts/eval_arranger.sh target/devset target/eval
if [[ -x scripts/ardour_test.sh ]]; then scripts/ardour_test.sh; fi
