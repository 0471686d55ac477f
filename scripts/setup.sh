#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian 12 machine with Rust and
# Python (idempotent), then makes the model, the dev set and the reference fixtures.
#   scripts/setup.sh            # system packages, Python packages, model, dev set
#   scripts/setup.sh --tests    # + reference fixtures (Python basic-pitch) and Ardour for the host tests
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=0; [[ "${1:-}" == "--tests" ]] && TESTS=1

pkgs="fluidsynth fluid-soundfont-gm"
# Tests: Ardour (host test); ALSA/JACK headers for the standalone build and Xvfb, ImageMagick,
# xwininfo/xprop and Mesa's software GL for the editor screenshot.
[[ $TESTS == 1 ]] && pkgs="$pkgs ardour pkg-config libasound2-dev libjack-jackd2-dev xvfb imagemagick x11-utils libgl1-mesa-dri"
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [[ -n "$missing" ]]; then
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Pinned: the dev-set builder (../shared/eval) and the Python references (basic-pitch 0.4.0 and
# swift-f0 0.3.0 on ONNX Runtime).
python3 -m pip install -q --disable-pip-version-check music21==10.5.1 pretty_midi mir_eval numpy
if [[ $TESTS == 1 ]]; then
  python3 -m pip install -q --disable-pip-version-check onnxruntime==1.32.0 pillow==13.0.0 librosa 'resampy>=0.2.2,<0.4.3' scipy scikit-learn soundfile
  python3 -m pip install -q --disable-pip-version-check --no-deps basic-pitch==0.4.0 swift-f0==0.3.0
fi

cargo xtask fetch-model --with-onnxruntime
[[ -f target/devset/index.json ]] || python3 ../shared/eval/make_devset.py target/devset
if [[ $TESTS == 1 ]]; then
  n=$( (ls -d target/fixtures/*/ 2>/dev/null || true) | wc -l)
  [[ $n -ge 19 ]] || python3 scripts/reference_fixtures.py target/devset target/fixtures
fi
