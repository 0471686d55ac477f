#!/usr/bin/env bash
# Opens the plugin's editor as a standalone app under Xvfb, with a dev-set song already captured
# (transcribed by the same engine, `pianola standalone --song`), on nice-plug's dummy audio backend
# (a running transport, no audio device needed), takes PNG screenshots at 1x and 2x scale, and checks
# they are drawn: not blank, and the piano roll shows notes in both hand colours.
#
#   scripts/editor_screenshot.sh [PIANOLA_STANDALONE_BINARY]
#
# Results (kept as CI artifacts): target/editor-screenshot.png, target/editor-screenshot-2x.png.
# Needs apt: xvfb imagemagick x11-utils (xwininfo, xprop) libgl1-mesa-dri (run time), libasound2-dev libjack-jackd2-dev
# (to build the standalone feature); python3 with Pillow. Without a binary argument it builds one
# (`--features onnxruntime,assert_process_allocs,standalone`, the set scripts/test.sh builds).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${PIANOLA_STANDALONE:-}}
if [[ -z "$BIN" ]]; then
  cargo build --release --features onnxruntime,assert_process_allocs,standalone --bin pianola
  mkdir -p target/standalone
  cp target/release/pianola target/standalone/pianola
  BIN=target/standalone/pianola
fi
SONG_ID=${SONG_ID:-bach_bwv1.6-mix}
DEVSET=${DEVSET:-target/devset}
read -r BPM BPB DOWNBEAT < <(python3 - "$DEVSET/index.json" "$SONG_ID" <<'PY'
import json, sys
songs = {s["id"]: s for s in json.load(open(sys.argv[1]))}
s = songs[sys.argv[2]]
print(s["bpm"], s["beats_per_bar"], s.get("first_downbeat_s", 0.0))
PY
)
SONG="$DEVSET/$SONG_ID/audio.wav"
LOG=target/editor-screenshot.log
: > "$LOG"

shoot() { # scale output
  local scale=$1 out=$2
  local display=":$((90 + scale))"
  Xvfb "$display" -screen 0 2200x1400x24 -nolisten tcp -noreset >>"$LOG" 2>&1 &
  local xvfb=$!
  sleep 1
  # baseview takes the scale from the X resource Xft.dpi (nice-plug's --dpi-scale is not used on X11).
  DISPLAY=$display xprop -root -f RESOURCE_MANAGER 8s -set RESOURCE_MANAGER "Xft.dpi:	$((96 * scale))"
  DISPLAY=$display LIBGL_ALWAYS_SOFTWARE=1 "$BIN" standalone --song "$SONG" --bpm "$BPM" --beats-per-bar "$BPB" \
    --first-downbeat "$DOWNBEAT" -- --backend dummy >>"$LOG" 2>&1 &
  local app=$!
  local ok=1
  # The window appears after the song is transcribed; the cover after the plugin's worker loaded
  # its model. Retry the check until it passes (or 90 s).
  for _ in $(seq 1 45); do
    sleep 2
    if ! kill -0 $app 2>/dev/null; then echo "the standalone exited; see $LOG" >&2; break; fi
    local geometry
    geometry=$(DISPLAY=$display xwininfo -root -tree 2>/dev/null | awk '/"Pianola"/ {print $(NF-1)}' | head -1)
    [[ -n "$geometry" ]] || continue
    DISPLAY=$display import -window root "$out.root.png"
    if python3 scripts/check_editor_screenshot.py "$out.root.png" "$geometry" "$out" "$scale" >>"$LOG" 2>&1; then
      # One more after the playhead moved a little, so the picture shows it mid-song.
      sleep 3
      DISPLAY=$display import -window root "$out.root.png"
      python3 scripts/check_editor_screenshot.py "$out.root.png" "$geometry" "$out" "$scale" && ok=0
      break
    fi
  done
  rm -f "$out.root.png"
  kill $app 2>/dev/null || true
  wait $app 2>/dev/null || true
  kill $xvfb 2>/dev/null || true
  wait $xvfb 2>/dev/null || true
  return $ok
}

status=0
shoot 1 target/editor-screenshot.png || status=1
shoot 2 target/editor-screenshot-2x.png || status=1
if [[ $status != 0 ]]; then
  echo "editor screenshot check FAILED; log: $LOG" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
echo "editor screenshots: target/editor-screenshot.png target/editor-screenshot-2x.png"
