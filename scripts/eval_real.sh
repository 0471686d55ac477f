#!/usr/bin/env bash
# Real-recordings evaluation (issue #14): `pianola cover` on the 16 game-soundtrack excerpts of
# ../shared/eval (no ground truth), scored with consistency.py beside the naive baseline.
#
# usage: scripts/eval_real.sh [DATA=target/realdev] [OUT=target/eval-real] [-- extra cover args]
#
# Builds DATA if it is missing (make_real_devset.py; needs sox + libsox-fmt-all and pip librosa)
# and its naive baseline (baselines_real.py -> DATA/_baselines/naive_cover). Each item is covered
# at density 0.5 (DENSITY=...) with --bpm = meta.json bpm_est and --beats = its beats_est_s, as a
# host gives its tempo map (BEATS=0: --first-beat = beats_est_s[0] instead; BEATS=0 FIRST_BEAT=0:
# --bpm alone, as the CLI before #14 took it), writing OUT/<id>.mid and OUT/<id>.log (stderr). Prints consistency.py's lines for the cover and the naive
# cover, the means, and per item which one has the higher harmony_margin / melody_acc.
set -euo pipefail
DATA=${1:-target/realdev}
OUT=${2:-target/eval-real}
shift $(( $# < 2 ? $# : 2 ))
[[ "${1:-}" == "--" ]] && shift
EVAL=${EVAL:-$(cd "$(dirname "$0")/../../shared/eval" 2>/dev/null && pwd || echo /work/shared/eval)}
PIANOLA=${PIANOLA:-$(dirname "$0")/../target/release/pianola}
DENSITY=${DENSITY:-0.5}
BACKEND=${BACKEND:-native}
if [[ ! -f "$DATA/index.json" ]]; then
  command -v sox >/dev/null || { apt-get update && apt-get install -y sox libsox-fmt-all; }
  python3 -c "import librosa" 2>/dev/null || pip install librosa
  python3 "$EVAL/make_real_devset.py" "$DATA"
fi
if [[ ! -d "$DATA/_baselines/naive_cover" ]]; then
  python3 "$EVAL/baselines_real.py" "$DATA" >/dev/null
fi
mkdir -p "$OUT"
ids=$(python3 -c "import json,sys; print(' '.join(m['id'] for m in json.load(open(sys.argv[1]+'/index.json'))))" "$DATA")
for id in $ids; do
  read -r bpm beat < <(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['bpm_est'], m['beats_est_s'][0])" "$DATA/$id/meta.json")
  phase=()
  if [[ "${BEATS:-1}" != 0 ]]; then
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['beats_est_s'])" "$DATA/$id/meta.json" >"$OUT/$id.beats.json"
    phase=(--beats "$OUT/$id.beats.json")
  elif [[ "${FIRST_BEAT:-1}" != 0 ]]; then
    phase=(--first-beat "$beat")
  fi
  "$PIANOLA" cover "$DATA/$id/audio.wav" --bpm "$bpm" "${phase[@]}" --density "$DENSITY" --backend "$BACKEND" \
    "$@" -o "$OUT/$id.mid" 2>"$OUT/$id.log" || { cat "$OUT/$id.log"; exit 1; }
done
echo "consistency.py, the cover:"
python3 "$EVAL/consistency.py" --dir "$DATA" "$OUT" --json "$OUT/consistency.json"
NAIVE=$DATA/_baselines/naive_cover.json
[[ -f "$NAIVE" ]] || python3 "$EVAL/consistency.py" --dir "$DATA" "$DATA/_baselines/naive_cover" --json "$NAIVE" >/dev/null
echo
python3 - "$OUT/consistency.json" "$NAIVE" "$OUT" <<'PY'
import json, sys
ci, ni = (json.load(open(p))["items"] for p in sys.argv[1:3])
print(f"{'id':28} {'margin':>7} {'naive':>7} {'mel_acc':>7} {'naive':>7} {'n/beat':>6} play  chosen")
wins = {"harmony_margin": 0, "melody_acc": 0}
for i in sorted(ni):
    c, n = ci.get(i, {}), ni[i]
    for k in wins:
        wins[k] += c.get(k, 0) >= n[k] - 1e-9
    log = open(f"{sys.argv[3]}/{i}.log").read().strip().splitlines()
    said = [l for l in log if "decod" in l or "tuning" in l]
    print(f"{i:28} {c.get('harmony_margin',0):7.3f} {n['harmony_margin']:7.3f} {c.get('melody_acc',0):7.3f} {n['melody_acc']:7.3f} "
          f"{c.get('notes_per_beat',0):6.2f} {int(c.get('playable_ok',0))}     {'; '.join(said)[:90]}")
m = lambda d, k: sum(r.get(k, 0) for r in d.values()) / max(len(d), 1)
print(f"{'MEAN cover':28} {m(ci,'harmony_margin'):7.3f} {m(ni,'harmony_margin'):7.3f} {m(ci,'melody_acc'):7.3f} {m(ni,'melody_acc'):7.3f} "
      f"{m(ci,'notes_per_beat'):6.2f} {m(ci,'playable_ok'):.2f}")
print(f"items >= naive: harmony_margin {wins['harmony_margin']}/{len(ni)}, melody_acc {wins['melody_acc']}/{len(ni)}; "
      f"melody_margin cover {m(ci,'melody_margin'):.3f} naive {m(ni,'melody_margin'):.3f}")
PY
