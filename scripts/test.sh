#!/usr/bin/env bash
# Every test: installs what they need, builds the bundles once (with the allocation check in
# process(), and the standalone wrapper for the editor screenshot, so one build serves all), checks
# formatting and clippy, runs all Rust tests in the release profile (the bundle's profile),
# clap-validator on the CLAP bundle, the editor screenshot under Xvfb, the dev-set arranger
# evaluation (cover score, pedal and dynamics) and the Ardour host test (Capture, and Live on a mix and a vocal item). Every step runs even when one before it
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
step cargo fmt --all -- --check
# Clippy in the release profile with the test features: its check build shares nothing with the
# bundle's, but the dependency metadata is quick next to the code generation already done.
step cargo clippy --release --features $FEATURES --all-targets -- -D warnings
step cargo test --release --features $FEATURES --no-fail-fast
step scripts/clap_validate.sh target/bundled/Pianola.clap
step scripts/editor_screenshot.sh target/release/pianola
step scripts/eval_arranger.sh target/devset target/eval
# The pianist's touch on the covers just made: pedal with the chords, melody over the accompaniment.
step python3 scripts/eval_pianist.py target/devset target/eval/d0.5 --check
step scripts/ardour_test.sh
step env PIANOLA_MODE=live PIANOLA_SECONDS=24 PIANOLA_SONG=bach_bwv1.6-mix scripts/ardour_test.sh
step env PIANOLA_MODE=live PIANOLA_SECONDS=24 PIANOLA_SONG=bach_bwv1.6-vocal scripts/ardour_test.sh
if (( ${#failed[@]} )); then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all test steps passed in $SECONDS s"
