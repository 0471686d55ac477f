#!/usr/bin/env bash
# Dev-set evaluation of the arranger: covers at densities 0.2 / 0.5 / 0.8 (quantize 1), scored
# with the eval set's scorer (cover table at 0.5 with --quantized, then the density check).
#
# usage: scripts/eval_arranger.sh [DEVSET=/work/devset] [OUT=/tmp/pianola-eval] [STYLE]
#
# Uses the CLI (`pianola cover`, built with `cargo build --release`) on each item's audio.wav.
# Set ARR_BIN=path/to/arr and NOTES=dir to use instead the arranger-only dev driver on reference
# transcriptions (NOTES/<id>/notes.json + contour.f32, e.g. from
# scripts/eval_arranger_transcribe.py or /work/fixtures): `arr DEVSET NOTES OUT DENSITY QUANTIZE [STYLE]`.
set -euo pipefail
DEVSET=${1:-target/devset}
OUT=${2:-/tmp/pianola-eval}
STYLE=${3:-}
SCORER=${SCORER:-$(dirname "$0")/../../shared/eval/score_dir.py}
PIANOLA=${PIANOLA:-$(dirname "$0")/../target/release/pianola}
mkdir -p "$OUT"
ids=$(python3 -c "import json,sys; print(' '.join(m['id'] for m in json.load(open(sys.argv[1]+'/index.json'))))" "$DEVSET")
for d in 0.2 0.5 0.8; do
  dir="$OUT/d$d"
  mkdir -p "$dir"
  if [[ -n "${ARR_BIN:-}" ]]; then
    "$ARR_BIN" "$DEVSET" "${NOTES:?NOTES=transcriptions dir}" "$dir" "$d" 1 $STYLE
  else
    for id in $ids; do
      read -r bpm bpb fd < <(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['bpm'], m['beats_per_bar'], m['first_downbeat_s'])" "$DEVSET/$id/meta.json")
      "$PIANOLA" cover "$DEVSET/$id/audio.wav" --bpm "$bpm" --beats-per-bar "$bpb" --first-downbeat "$fd" \
        --density "$d" --quantize 1 ${STYLE:+--style "$STYLE"} -o "$dir/$id.mid"
    done
  fi
done
python3 "$SCORER" "$DEVSET" "$OUT/d0.5" --quantized --json "$OUT/d0.5.json"
python3 "$SCORER" "$DEVSET" --density "$OUT/d0.2" "$OUT/d0.5" "$OUT/d0.8"
# Issues #14's and #15's targets at density 0.5, quantize 1 (a regression fails the step, not just
# the table): mix >= 0.80 (#14), vocal >= 0.80 (#15; #14 asked 0.75).
python3 - "$OUT/d0.5.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m, problems = d["means"], []
for kind, target in (("mix", 0.80), ("vocal", 0.80)):
    if m[kind]["cover_score"] < target:
        problems.append(f"{kind} cover_score {m[kind]['cover_score']:.3f} < {target}")
    for key in ("playable_ok", "grid_ok"):
        if m[kind][key] < 1.0:
            problems.append(f"{kind} {key} {m[kind][key]:.3f} < 1.0")
if d["missing"]:
    problems.append(f"no cover for {d['missing']}")
if problems:
    sys.exit("arranger targets missed: " + "; ".join(problems))
print("arranger targets met: mix %.3f >= 0.80 (#14), vocal %.3f >= 0.80 (#15), playable and on the grid" % (m["mix"]["cover_score"], m["vocal"]["cover_score"]))
PY
