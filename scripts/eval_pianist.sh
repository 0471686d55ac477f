#!/usr/bin/env bash
# Pedal and dynamics of Pianola's covers on a dev set (scripts/eval_pianist.py says what is
# measured): covers every item at density 0.5, quantize 1, then scores them.
#
# usage: scripts/eval_pianist.sh DATA OUT [--check]
#   DATA: ../shared/eval/make_devset.py's set (meta has bpm, beats_per_bar, first_downbeat_s) or
#         ../shared/eval/make_real_devset.py's (meta has bpm_est and beats_est_s: the tempo as a
#         host would give it, beat 0 at the first tracked beat).
set -euo pipefail
DATA=${1:?DATA}
OUT=${2:?OUT}
shift 2
PIANOLA=${PIANOLA:-$(dirname "$0")/../target/release/pianola}
mkdir -p "$OUT"
ids=$(python3 -c "import json,sys; print(' '.join(m['id'] if isinstance(m, dict) else m for m in json.load(open(sys.argv[1]+'/index.json'))))" "$DATA")
for id in $ids; do
  read -r -a grid < <(python3 - "$DATA/$id/meta.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
if "bpm" in m:
    print(f"--bpm {m['bpm']} --beats-per-bar {m['beats_per_bar']} --first-downbeat {m['first_downbeat_s']}")
else:
    print(f"--bpm {m['bpm_est']}")
PY
)
  "$PIANOLA" cover "$DATA/$id/audio.wav" "${grid[@]}" --density 0.5 --quantize 1 -o "$OUT/$id.mid" 2>/dev/null
done
python3 "$(dirname "$0")/eval_pianist.py" "$DATA" "$OUT" --json "$OUT/pianist.json" "$@"
