#!/usr/bin/env bash
# Pianola in a second real host: Ardour 7 (Debian's ardour7, headless through ardour7-lua, the
# "None (Dummy)" audio backend). Scans the VST3 bundle, makes a session with one audio track holding
# the first seconds of a dev-set song as a region at 0 (session tempo set to the song's), Pianola on
# it and a Lua MIDI logger after it. Capture mode: rolls a capture pass, locates to 0, rolls a
# playback pass, then checks the note events that came out of Pianola. Live mode (PIANOLA_MODE=live):
# sets Mode to Live through the host, rolls one pass, and holds the note-ons against the CLI's cover
# of the same audio (`pianola cover --bpm`): median offset within 1/16 beat, beat+key F1 >= 0.5 at
# 1/8 beat. Ardour compensates the latency Pianola reports (it reads the region that far ahead and
# gives the plugin the position where its output lands), so the notes must sit on the song's beats.
#
#   scripts/ardour_test.sh                                  # Capture, bach_bwv1.6-mix
#   PIANOLA_MODE=live PIANOLA_SONG=bach_bwv1.6-vocal scripts/ardour_test.sh
# Environment: PIANOLA_VST3 (bundle), PIANOLA_DEVSET (default target/devset), PIANOLA_SONG (dev-set
#   item), PIANOLA_MODE (capture|live), PIANOLA_CLI (default target/release/pianola, for Live),
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
SONG=${PIANOLA_SONG:-bach_bwv1.6-mix}
MODE=${PIANOLA_MODE:-capture}
CLI=${PIANOLA_CLI:-target/release/pianola}
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
export PIANOLA_SECONDS=${PIANOLA_SECONDS:-12} PIANOLA_WAIT=${PIANOLA_WAIT:-6} PIANOLA_MODE=$MODE
if [ "$MODE" = live ]; then
    [ -x "$CLI" ] || die "no CLI at $CLI for the reference cover"
    "$CLI" cover "$ROOT/$WAV" --bpm "$PIANOLA_BPM" -o "$TMP/cover.mid" >"$TMP/cli.log" 2>&1 || { cat "$TMP/cli.log" >&2; die "pianola cover failed"; }
fi
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
python3 - "$TMP/result.txt" "$start" "$TMP/session/pianola.ardour" "$MODE" "$TMP/cover.mid" "$PIANOLA_BPM" "$PIANOLA_SECONDS" "$SONG" <<'PY'
import sys, time, re, base64, json
lines = open(sys.argv[1]).read().split("\n")
mode = sys.argv[4]
capture = int(next(l.split()[1] for l in lines if l.startswith("CAPTURE")))
dropped = int(next(l.split()[1] for l in lines if l.startswith("DROPPED")))
evs = [tuple(map(int, l.split()[1:])) for l in lines if l.startswith("EV")]
def fail(msg):
    print(f"ardour: FAIL: {msg}", file=sys.stderr); sys.exit(1)
if dropped:
    fail(f"the logger dropped {dropped} events")
cap, play = evs[:capture], evs[capture:]
# The sustain pedal (CC64) apart from the notes.
pedal = [(s, k, v, t) for s, k, v, t in play if s & 0xF0 == 0xB0]
play = [e for e in play if e[0] & 0xF0 != 0xB0]
cap = [e for e in cap if e[0] & 0xF0 != 0xB0]
if mode == "live":
    import pretty_midi
    bpm, seconds, song = float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
    latency = int(next(l.split()[1] for l in lines if l.startswith("LATENCY")))
    spb = 44100 * 60.0 / bpm
    ons = [(t / spb, k) for s, k, v, t in play if s & 0xF0 == 0x90 and v > 0]
    pm = pretty_midi.PrettyMIDI(sys.argv[5])
    # The CLI writes beat 1 at the file's start at --bpm: beats = seconds * bpm / 60.
    cover = [(n.start * bpm / 60.0, n.pitch) for i in pm.instruments for n in i.notes]
    last = max((b for b, _ in ons), default=0.0)
    cover = [(b, k) for b, k in cover if b <= min(last, seconds * bpm / 60.0)]
    offsets = []
    for b, k in ons:
        near = [b - c for c, p in cover if p == k and abs(b - c) <= 0.5]
        if near:
            offsets.append(min(near, key=abs))
    offsets.sort()
    median = offsets[len(offsets) // 2] if offsets else float("nan")
    pairs = sorted((abs(b - c), i, j) for i, (b, k) in enumerate(ons) for j, (c, p) in enumerate(cover) if p == k and abs(b - c) <= 0.125)
    used_i, used_j, m = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i); used_j.add(j); m += 1
    p, r = m / max(len(ons), 1), m / max(len(cover), 1)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(f"ardour live ({song}): latency {latency} samples ({latency / spb:.3f} beats), {len(ons)} note-ons, cover {len(cover)} notes; "
          f"median offset {median:+.4f} beats, beat+key F1 {f1:.3f} at 1/8 beat ({time.time() - float(sys.argv[2]):.0f} s)")
    if latency <= 0:
        fail("Ardour does not know Pianola's Live latency")
    if not ons:
        fail("Live mode played nothing")
    if not abs(median) <= 1 / 16:
        fail(f"Live note-ons sit {median:+.3f} beats off the cover's (limit 1/16)")
    if f1 < 0.5:
        fail(f"Live note-ons against the cover: beat+key F1 {f1:.3f} < 0.5")
    sys.exit(0)
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
presses = sum(1 for s, k, v, t in pedal if v >= 64)
if presses == 0:
    fail("no sustain pedal (CC64) in the playback pass")
if pedal[-1][2] >= 64:
    fail("the sustain pedal was left down after the transport stopped")
print(f"ardour: {ons} note-ons, {offs} note-offs, {presses} pedal presses (released at the stop) from Pianola VST3 ({time.time() - float(sys.argv[2]):.0f} s)")
PY
