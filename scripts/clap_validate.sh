#!/usr/bin/env bash
# clap-validator 0.4.1 (../shared/tools/clap-validator.sh builds and runs it) on the CLAP bundle,
# RUNS times (the fuzzing tests draw new parameters and transports each run). Fails when any test
# failed or crashed in any run, or when `transport-fuzz-sample-accurate` (which deactivates the
# plugin while its worker is busy) took longer than LIMIT seconds in any run: a deactivate that
# waits for the worker freezes the DAW's main thread.
#
#   scripts/clap_validate.sh [bundle]      env: RUNS (default 3), LIMIT (default 2.0 s), OUT (json dir)
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-target/bundled/Pianola.clap}
runs=${RUNS:-3}
out=${OUT:-target/clap-validator-runs}
validator=../shared/tools/clap-validator.sh
[ -x "$validator" ] || validator="bash $validator"
mkdir -p "$out"
rm -f "$out"/run-*.json
for i in $(seq 1 "$runs"); do
  # Exit status 1 means "a test failed": the summary below reads the JSON and says which.
  $validator validate "$bundle" --json >"$out/run-$i.json" 2>"$out/run-$i.log" || true
done
python3 - "$out" "$runs" "${LIMIT:-2.0}" <<'PY'
import json, sys, glob, collections
out, runs, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
tally = collections.Counter()
problems, fuzz = [], []
for i in range(1, runs + 1):
    path = f"{out}/run-{i}.json"
    try:
        results = json.load(open(path))["results"]
    except Exception as e:
        problems.append(f"run {i}: no JSON result ({e}); see {out}/run-{i}.log")
        continue
    for r in results:
        name, code = next(iter(r["test"].values()))["test"], r["status"]["code"]
        secs = r["duration"]["secs"] + r["duration"]["nanos"] / 1e9
        tally[code] += 1
        if code in ("failed", "crashed"):
            problems.append(f"run {i}: {name} {code}: {r['status'].get('details')}")
        if name == "transport-fuzz-sample-accurate":
            fuzz.append(secs)
            if secs > limit:
                problems.append(f"run {i}: {name} took {secs:.2f} s (limit {limit} s)")
per_run = {k: v / runs for k, v in tally.items()}
print(f"clap-validator: {runs} runs, per run " + ", ".join(f"{v:g} {k}" for k, v in sorted(per_run.items())))
if fuzz:
    print(f"clap-validator: transport-fuzz-sample-accurate {min(fuzz):.2f}..{max(fuzz):.2f} s over {len(fuzz)} runs")
for p in problems:
    print("clap-validator: FAIL " + p, file=sys.stderr)
passed = tally["success"] + tally["warning"]
print(f"{passed} passed, {tally['failed'] + tally['crashed']} failed, {tally['skipped']} skipped")
sys.exit(1 if problems else 0)
PY
