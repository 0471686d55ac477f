#!/usr/bin/env bash
# Every test: installs what they need, builds the bundles once (with the allocation check in
# process(), and the standalone wrapper for the editor screenshot, so one build serves all), runs all
# Rust tests in the release profile (the bundle's profile), the editor screenshot under Xvfb, the
# dev-set arranger evaluation and the Ardour host test. Every step runs even when one before it
# failed (CI shows all that is wrong at once); the exit status says whether any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
FEATURES=onnxruntime,assert_process_allocs,standalone
cargo xtask bundle pianola --release --features $FEATURES
set +e
failed=()
step() {
  local started=$SECONDS
  echo "=== $*"
  "$@" || failed+=("$*")
  echo "=== $((SECONDS - started)) s: $*"
}
step cargo test --release --features $FEATURES --no-fail-fast
step scripts/editor_screenshot.sh target/release/pianola
step scripts/eval_arranger.sh target/devset target/eval
step scripts/ardour_test.sh
if (( ${#failed[@]} )); then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all test steps passed in $SECONDS s"
