#!/usr/bin/env bash
# The main job: build the plugin bundles (CLAP + VST3) and the CLI, then render a demo piano cover
# from a song the repo can make (a dev-set mix rendered with FluidSynth).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The bundles a producer installs: no allocation check in process() (the test build has it, and
# the standalone wrapper for the screenshot; scripts/test.sh builds that set), ONNX Runtime for the
# CLI's `--backend ort` (the plugin itself runs tract).
cargo xtask bundle pianola --release --features onnxruntime
ls -la target/bundled/
song=target/devset/bach_bwv1.6-mix
read -r bpm bpb fd < <(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['bpm'], m['beats_per_bar'], m['first_downbeat_s'])" $song/meta.json)
mkdir -p out
target/release/pianola transcribe $song/audio.wav -o out/demo-notes.mid
target/release/pianola cover $song/audio.wav --bpm "$bpm" --beats-per-bar "$bpb" --first-downbeat "$fd" --density 0.6 -o out/demo-cover.mid --render out/demo-cover.wav
echo "demo: out/demo-cover.mid and out/demo-cover.wav (piano cover of $song/audio.wav, on Debian's FluidR3 GM piano), bundles in target/bundled/"
