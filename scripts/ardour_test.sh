#!/usr/bin/env bash
# Pianola in a second real host: Ardour 7 (Debian's ardour7, headless through ardour7-lua, the
# "None (Dummy)" audio backend). Scans the VST3 bundle, makes a session with one audio track fed
# the first seconds of a dev-set song (116 bpm, session tempo set to match), Pianola on it and a Lua
# MIDI logger after it; rolls a capture pass, locates to 0, rolls a playback pass, then checks the
# note events that came out of Pianola.
#
#   scripts/ardour_test.sh            # bundle: target/bundled/Pianola.vst3
# Environment: PIANOLA_VST3 (bundle), PIANOLA_DEVSET (default target/devset),
#   PIANOLA_SECONDS (rolling per pass, default 12), PIANOLA_WAIT (seconds between passes, default 6),
#   PIANOLA_BPM (session tempo, default the song's from meta.json), PIANOLA_BLOCK (engine block,
#   default 1024), PIANOLA_KEEP=1 keeps the temp dir (session, logs).
# Everything Ardour writes (config, plugin cache, session) lives in a temp HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ARDOUR_LIB=/usr/lib/ardour7
BUNDLE=${PIANOLA_VST3:-target/bundled/Pianola.vst3}
DEVSET=${PIANOLA_DEVSET:-target/devset}
SONG=bach_bwv1.6-mix
WAV=$DEVSET/$SONG/audio.wav
BPM=116
start=$(date +%s.%N)

die() { echo "ardour: FAIL: $*" >&2; exit 1; }
command -v ardour7-lua >/dev/null || die "ardour7-lua not installed (apt-get install --no-install-recommends ardour)"
[ -x $ARDOUR_LIB/ardour-vst3-scanner ] || die "$ARDOUR_LIB/ardour-vst3-scanner missing"
[ -f "$WAV" ] || die "no dev-set song at $WAV (python3 ../shared/eval/make_devset.py $DEVSET)"
if [ ! -d "$BUNDLE" ]; then
    [ -z "${PIANOLA_VST3:-}" ] || die "no bundle at $BUNDLE"
    echo "ardour: building the bundle (cargo xtask bundle pianola --release)" >&2
    cargo xtask bundle pianola --release >&2 || die "bundle build failed"
fi
if [ -f "$DEVSET/$SONG/meta.json" ]; then
    BPM=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bpm"])' "$DEVSET/$SONG/meta.json" 2>/dev/null || echo 116)
fi

TMP=$(mktemp -d /tmp/pianola-ardour.XXXXXX)
if [ -z "${PIANOLA_KEEP:-}" ]; then trap 'rm -rf "$TMP"' EXIT; else echo "ardour: keeping $TMP" >&2; fi
export HOME=$TMP/home XDG_CONFIG_HOME=$TMP/home/.config XDG_CACHE_HOME=$TMP/home/.cache
mkdir -p "$HOME/.vst3" "$XDG_CONFIG_HOME/ardour7/scripts"
# A copy in ~/.vst3 (a default VST3 path), backdated: the Lua session only reads the plugin cache,
# and counts it stale if the bundle is newer than the cache entry.
cp -r "$BUNDLE" "$HOME/.vst3/Pianola.vst3"
find "$HOME/.vst3/Pianola.vst3" -exec touch -d '1 minute ago' {} +
cp scripts/ardour/pianola_feed.lua scripts/ardour/pianola_midilog.lua "$XDG_CONFIG_HOME/ardour7/scripts/"

LD_LIBRARY_PATH=$ARDOUR_LIB $ARDOUR_LIB/ardour-vst3-scanner -f "$HOME/.vst3/Pianola.vst3" >"$TMP/scan.log" 2>&1 \
    || { cat "$TMP/scan.log" >&2; die "ardour-vst3-scanner failed on the bundle"; }

export PIANOLA_WAV=$ROOT/$WAV PIANOLA_SESSION_DIR=$TMP/session PIANOLA_RESULT=$TMP/result.txt PIANOLA_BPM=${PIANOLA_BPM:-$BPM}
export PIANOLA_SECONDS=${PIANOLA_SECONDS:-12} PIANOLA_WAIT=${PIANOLA_WAIT:-6}
set +e
timeout 300 ardour7-lua scripts/ardour/session.lua >"$TMP/lua.log" 2>&1
rc=$?
set -e
cat "$TMP/lua.log"
[ -f "$TMP/result.txt" ] || die "ardour7-lua exited $rc without a result (log above)"
grep -q '^FAIL' "$TMP/result.txt" && die "$(sed -n 's/^FAIL //p' "$TMP/result.txt")"
[ $rc -eq 0 ] || die "ardour7-lua exited $rc"

# Check the playback pass: note-ons, keys 21..108, every note-on ended by a note-off (the plugin
# releases what sounds when the transport stops). A cover of the captured song, not silence.
python3 - "$TMP/result.txt" "$start" "$TMP/session/pianola.ardour" <<'PY'
import sys, time, re, base64, json
lines = open(sys.argv[1]).read().split("\n")
capture = int(next(l.split()[1] for l in lines if l.startswith("CAPTURE")))
dropped = int(next(l.split()[1] for l in lines if l.startswith("DROPPED")))
evs = [tuple(map(int, l.split()[1:])) for l in lines if l.startswith("EV")]
def fail(msg):
    print(f"ardour: FAIL: {msg}", file=sys.stderr); sys.exit(1)
if dropped:
    fail(f"the logger dropped {dropped} events")
cap, play = evs[:capture], evs[capture:]
cap_ons = sum(1 for s, k, v, t in cap if s & 0xF0 == 0x90 and v > 0)
if cap_ons:
    fail(f"{cap_ons} note-ons during the capture pass (capture mode should play nothing yet)")
ons = offs = 0
sounding = {}
for s, k, v, t in play:
    on = s & 0xF0 == 0x90 and v > 0
    if on:
        ons += 1
        if not 21 <= k <= 108:
            fail(f"note-on key {k} outside 21..108 at sample {t}")
        sounding[(s & 0x0F, k)] = sounding.get((s & 0x0F, k), 0) + 1
    else:
        offs += 1
        c = (s & 0x0F, k)
        if sounding.get(c, 0) > 0:
            sounding[c] -= 1
if ons == 0:
    # Why: the capture Pianola saved in the session (its state chunk) tells what it recorded.
    why = ""
    try:
        xml = open(sys.argv[3]).read()
        chunk = re.search(r'name="Pianola".*?<chunk>([^<]*)</chunk>', xml, re.S).group(1)
        raw = base64.b64decode(chunk)
        state = json.loads(raw[raw.index(b'{"version"'):raw.rindex(b'}') + 1].decode())
        cap = json.loads(state["fields"]["capture"])
        cov = cap["covered"]
        why = f"; the saved capture has {len(cap['notes'])} notes in {len(cov)} covered segments"
        if len(cov) > 20:
            spans = [tuple(map(float, c.split())) for c in cov[:4]]
            why += (f" (fragmented: {', '.join(f'{a:.4f}-{b:.4f}' for a, b in spans)}, ...: consecutive blocks"
                    " were taken as jumps; Ardour's VST3 projectTimeMusic is rounded to 1/1920 beat, the"
                    " plugin's continuity tolerance is half a sample)")
    except Exception as e:
        why = f"; could not read the saved capture ({e})"
    fail("no note-ons in the playback pass" + why)
hanging = {c: n for c, n in sounding.items() if n}
if hanging:
    fail(f"{sum(hanging.values())} note-ons never released (channel, key): {sorted(hanging)[:10]}")
print(f"ardour: {ons} note-ons, {offs} note-offs from Pianola VST3 ({time.time() - float(sys.argv[2]):.0f} s)")
PY
