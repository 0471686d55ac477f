"""Harmony facts of the Bach chorales in music21's corpus, minus the dev set's pieces: per beat the
best triad of all four voices (the chord), the soprano's notes, the bar position; per piece the key.
Input of chorale_tables.py (which writes src/arrange/chorale_stats.rs).

usage: python3 chorale_corpus.py [OUT.pkl=/tmp/chorales.pkl]    (pip install music21; ~5 min)
"""
import pickle, sys, warnings
import numpy as np
from music21 import converter, corpus
warnings.filterwarnings('ignore')
DEV = {'bwv1.6', 'bwv2.6', 'bwv4.8', 'bwv5.7', 'bwv6.6', 'bwv7.7', 'bwv9.7', 'bwv12.7'}  # in the dev set
TRIADS = []
for q, iv in {'M': (0, 4, 7), 'm': (0, 3, 7), 'd': (0, 3, 6)}.items():
    for r in range(12):
        v = np.zeros(12)
        for i in iv:
            v[(r + i) % 12] = 1
        TRIADS.append(((r, q), v / np.sqrt(3)))
out = []
for p in corpus.getComposer('bach'):
    if p.stem in DEV:
        continue
    try:
        s = converter.parse(p)
        key = s.analyze('key')
    except Exception:
        continue
    parts = s.parts
    ts = s.recurse().getElementsByClass('TimeSignature')
    if len(parts) != 4 or not ts or ts[0].denominator != 4:
        continue
    bpb = ts[0].numerator
    notes = []  # start, end (quarters), MIDI pitch, part (0 = soprano)
    for pi, part in enumerate(parts):
        flat = part.flatten()
        for n in flat.notes:
            if not n.isChord:
                o = float(n.getOffsetBySite(flat))
                notes.append((o, o + float(n.quarterLength), n.pitch.midi, pi))
    if not notes:
        continue
    m1 = parts[0].getElementsByClass('Measure')
    pickup = float(m1[0].barDuration.quarterLength - m1[0].paddingLeft) if m1 and m1[0].paddingLeft else 0.0
    beats = []
    for b in range(int(np.ceil(max(n[1] for n in notes)))):
        pcs, low, sop = np.zeros(12), np.zeros(12), []
        for o, e, pm, pi in notes:
            ov = min(e, b + 1) - max(o, b)
            if ov > 0:
                pcs[pm % 12] += ov
                if pi != 0:
                    low[pm % 12] += ov
                if pi == 0:
                    sop.append((pm % 12, ov, o >= b - 1e-9, abs(o - b) < 1e-9))
        if pcs.sum() == 0:
            beats.append(None)
            continue
        chord = max(TRIADS, key=lambda t: pcs @ t[1])[0]
        beats.append(dict(chord=chord, low=low, sop=sop, pos=int(round(b - pickup)) % bpb))
    out.append(dict(id=p.stem, tonic=key.tonic.pitchClass, minor=key.mode == 'minor', bpb=bpb, beats=beats))
    print(p.stem, key, len(beats), flush=True)
pickle.dump(out, open(sys.argv[1] if len(sys.argv) > 1 else '/tmp/chorales.pkl', 'wb'))
print('pieces', len(out))
