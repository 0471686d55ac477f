#!/usr/bin/env python3
"""Does the cover sound like a pianist played it? Pedal and dynamics of a directory of covers.

    eval_pianist.py DATA COVERS [--json OUT.json] [--check]

DATA is a dev set (../shared/eval/make_devset.py: meta.json has `bpm`, beat 0 at 0 s) or the real
recordings (../shared/eval/make_real_devset.py: meta.json has `beats_est_s`); COVERS/<id>.mid are
the covers (`pianola cover`). Per item and in the mean:

- `pedal_presses`: CC64 presses in the cover (every cover must have some).
- `pedal_after_change`: share of presses that go down within a sixteenth after a chord change of
  the cover. A chord change is judged from the cover alone: the pitch classes of the left hand
  sounding in a beat differ from the beat before, neither set holding the other, or its bass moves
  (the left hand plays the harmony in every style Pianola has at density >= 0.2; a beat where it is
  silent and the next where it plays is a change; a beat that sounds fewer of the same chord's notes
  over the same bass is not). Beats are the cover file's (its one tempo): judge covers made on a
  constant grid (`--bpm`), as eval_pianist.sh makes them.
- `pedal_blur`: share of presses held across a chord change (a beat strictly inside the press whose
  left-hand pitch classes differ from the press's first beat's). Target 0.
- `velocity_spearman`: per beat of the audio (the tracked beats, or the dev set's grid), Spearman
  correlation between the mean velocity of cover notes starting in the beat and the audio's RMS in
  that beat (beats where the cover starts nothing are left out).
- `melody_louder`: at onsets where the cover strikes more than one note and its highest note struck
  has no held note above it (the melody's note there, as score.py's skyline reads it), the share
  where it is louder than every other note struck with it.

--check fails (exit 1) unless every item has presses, pedal_after_change >= 0.9, pedal_blur == 0,
melody_louder >= 0.9 (and, on a set with `beats_est_s`, mean velocity_spearman >= 0.6).
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
from scipy.stats import spearmanr

SIXTEENTH = 0.25


def beats_of(meta, seconds):
    if "beats_est_s" in meta:
        return np.asarray(meta["beats_est_s"], dtype=float)
    spb = 60.0 / meta["bpm"]
    return np.arange(0.0, seconds + spb, spb)


def cover_beat(pm):
    """Seconds -> cover beats through the file's own tempo (Pianola writes one tempo, beat 0 at 0 s)."""
    _, tempi = pm.get_tempo_changes()
    bpm = float(tempi[0]) if len(tempi) else 120.0
    return lambda t: t * bpm / 60.0


def pedal_presses(pm, beat):
    """(down, up) in cover beats from CC64 of the first instrument that has any (both hands carry it)."""
    for inst in pm.instruments:
        ccs = sorted((c.time, c.value) for c in inst.control_changes if c.number == 64)
        if not ccs:
            continue
        presses, down = [], None
        for t, v in ccs:
            if v >= 64 and down is None:
                down = t
            elif v < 64 and down is not None:
                presses.append((beat(down), beat(t)))
                down = None
        return presses
    return []


def left_hand_classes(pm, beat, n_beats):
    """Per integer cover beat, the pitch classes the left hand sounds in it and its lowest note's
    class (the bass), or None where it is silent."""
    lh = [i for i in pm.instruments if "left" in i.name.lower()]
    out = [frozenset() for _ in range(n_beats)]
    low = [None for _ in range(n_beats)]
    for inst in lh:
        for n in inst.notes:
            a, b = beat(n.start), beat(n.end)
            for k in range(max(0, int(math.floor(a + 1e-9))), min(n_beats, int(math.ceil(b - 1e-9)))):
                out[k] = out[k] | {n.pitch % 12}
                if low[k] is None or n.pitch < low[k]:
                    low[k] = n.pitch
    return [(c, None if l is None else l % 12) for c, l in zip(out, low)]


def item_metrics(audio_path, meta, cover_path):
    pm = pretty_midi.PrettyMIDI(str(cover_path))
    beat = cover_beat(pm)
    end = max((n.end for i in pm.instruments for n in i.notes), default=0.0)
    n_beats = int(math.ceil(beat(end))) + 2
    presses = pedal_presses(pm, beat)
    classes = left_hand_classes(pm, beat, n_beats)
    # One chord's beats may sound fewer of its notes (a note left out for the hand's span, a tone
    # the beat does not sound): a beat whose classes contain, or are contained in, the other's is
    # the same chord, unless the bass moves (an inversion or a new bass under the same tones is a
    # harmony change a pianist re-pedals for).
    def differ(a, b):
        (ca, la), (cb, lb) = a, b
        return bool(ca) and (not (ca <= cb or cb <= ca) or la != lb)

    changes = [k for k in range(n_beats) if classes[k][0] and (k == 0 or not classes[k - 1][0] or differ(classes[k], classes[k - 1]))]
    after = sum(1 for d, _ in presses if any(0.0 < d - c <= SIXTEENTH + 1e-6 for c in changes))
    blurred = 0
    for d, u in presses:
        first = int(math.floor(d))
        inside = [k for k in range(first + 1, int(math.ceil(u - 1e-6))) if k < n_beats]
        if any(differ(classes[k], classes[first]) for k in inside):
            blurred += 1

    # Velocity against loudness per audio beat.
    audio, sr = sf.read(str(audio_path), always_2d=True)
    mono = audio.mean(axis=1)
    beats = beats_of(meta, len(mono) / sr)
    notes = sorted((n.start, n.velocity) for i in pm.instruments for n in i.notes)
    starts = np.array([s for s, _ in notes])
    vels = np.array([v for _, v in notes], dtype=float)
    rms, mean_vel = [], []
    for a, b in zip(beats[:-1], beats[1:]):
        sel = (starts >= a) & (starts < b)
        if not sel.any():
            continue
        seg = mono[int(a * sr):int(b * sr)]
        if len(seg) == 0:
            continue
        rms.append(float(np.sqrt(np.mean(seg * seg))))
        mean_vel.append(float(vels[sel].mean()))
    rho = float(spearmanr(mean_vel, rms).statistic) if len(rms) >= 3 and np.std(mean_vel) > 0 and np.std(rms) > 0 else float("nan")

    # Melody louder than the rest at shared onsets: where the highest note struck is also the
    # highest sounding (no held note above it), it is the melody's note there.
    all_notes = [n for i in pm.instruments for n in i.notes]
    by_onset = {}
    for n in all_notes:
        by_onset.setdefault(round(n.start, 4), []).append(n)
    shared = []
    for t, struck in by_onset.items():
        if len(struck) < 2:
            continue
        top = max(struck, key=lambda n: n.pitch)
        held_above = any(n.start < t - 1e-4 and n.end > t + 1e-4 and n.pitch > top.pitch for n in all_notes)
        if not held_above:
            shared.append((top, [n for n in struck if n is not top]))
    louder = sum(1 for top, rest in shared if all(top.velocity > n.velocity for n in rest))
    return {
        "pedal_presses": len(presses),
        "pedal_after_change": after / len(presses) if presses else float("nan"),
        "pedal_blur": blurred / len(presses) if presses else float("nan"),
        "velocity_spearman": rho,
        "melody_louder": louder / len(shared) if shared else float("nan"),
        "beats_scored": len(rms),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("covers")
    ap.add_argument("--json")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    data, covers = Path(args.data), Path(args.covers)
    index = json.loads((data / "index.json").read_text())
    ids = [m["id"] if isinstance(m, dict) else m for m in index]
    rows = {}
    for id_ in ids:
        cover = covers / f"{id_}.mid"
        if not cover.exists():
            print(f"{id_}: no cover", file=sys.stderr)
            continue
        meta = json.loads((data / id_ / "meta.json").read_text())
        rows[id_] = item_metrics(data / id_ / "audio.wav", meta, cover)
    keys = ["pedal_presses", "pedal_after_change", "pedal_blur", "velocity_spearman", "melody_louder"]
    print("| item | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for id_, r in rows.items():
        print(f"| {id_} | " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    means = {k: float(np.nanmean([r[k] for r in rows.values()])) for k in keys}
    print("| **mean** | " + " | ".join(f"{means[k]:.3f}" for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"items": rows, "means": means}, indent=1))
    if args.check:
        problems = []
        for id_, r in rows.items():
            if r["pedal_presses"] == 0:
                problems.append(f"{id_}: no pedal")
        if len(rows) < len(ids):
            problems.append(f"{len(ids) - len(rows)} covers missing")
        if means["pedal_after_change"] < 0.9:
            problems.append(f"pedal_after_change {means['pedal_after_change']:.3f} < 0.9")
        if means["pedal_blur"] > 0.0:
            problems.append(f"pedal_blur {means['pedal_blur']:.3f} > 0")
        if means["melody_louder"] < 0.9:
            problems.append(f"melody_louder {means['melody_louder']:.3f} < 0.9")
        first_meta = json.loads((data / ids[0] / "meta.json").read_text())
        if "beats_est_s" in first_meta and means["velocity_spearman"] < 0.6:
            problems.append(f"velocity_spearman {means['velocity_spearman']:.3f} < 0.6")
        if problems:
            sys.exit("pianist targets missed: " + "; ".join(problems))
        print("pianist targets met")


if __name__ == "__main__":
    main()
