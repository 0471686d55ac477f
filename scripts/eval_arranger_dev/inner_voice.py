"""Held-out measure of the harmonised melody's inner voice (src/arrange/harmony/inner.rs): the
chord chosen per beat (chorale_net.py's harmonise) against the same chord with its sure tones held
and one inner voice moving through the others inside the beat.

usage: python3 inner_voice.py /tmp/chorales.pkl      (~1 min; the corpus from chorale_corpus.py)

Trained on one half of the chorales (HMM and networks as chorale_net.py trains them), scored on
the other half's 48-beat excerpts, both ways round: per-beat cosine of the pitch classes played
(each weighted by how long it sounds in the beat) against the lower voices'. The rules are
inner.rs's: the bass and at least one more chord tone held; the inner voice, in quarter beats and
at most one beat in all, takes the chord's other tones and the EXTRA most likely tones outside it
that are in the main key's natural scale and make no chromatic semitone with a held tone or the
melody (a semitone between two scale tones is a passing dissonance and allowed); the best fit to
the expected lower voices is played, the plain chord where that is as good.
"""
import itertools, pickle, sys
import numpy as np
import chorale_net as C

STEPS = 4
EXTRA = 2
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)


def expected_and_key(hmm, nets, beats):
    """chorale_net.harmonise's blended expectation of the lower voices per beat, and its main key."""
    prof = np.zeros(12)
    for b in beats:
        if b:
            for pc, ov, on, onb in b['sop']:
                prof[pc] += ov
    ks = {(t, m): C.corr(prof, np.roll(C.AE_MINOR if m else C.AE_MAJOR, t)) for m in (False, True) for t in range(12)}
    top = sorted(ks, key=lambda k: -ks[k])[:3]
    w = np.exp(10 * np.array([ks[k] - ks[top[0]] for k in top])); w /= w.sum()
    occ = C.occupied(beats); mu = np.zeros((len(beats), 12))
    for key, wk in zip(top, w):
        t0, minor = key
        h = hmm.lower(occ, key)
        rel = C.BLEND * nets[minor].predict(C.features(beats, key, h)) + (1 - C.BLEND) * h
        mu += wk * np.roll(rel, t0, axis=1)
    return mu, top[0]


def bass_of(chord):
    """The root of a chosen voicing (a label triad, alone or with one more tone)."""
    s = set(int(p) for p in np.flatnonzero(chord))
    for r in sorted(s):
        if ((r + 4) % 12 in s or (r + 3) % 12 in s) and ((r + 7) % 12 in s or (r + 6) % 12 in s):
            return r
    return min(s)


def motion(chord, lower, scale, melody):
    l = np.clip(lower, 0, None)
    bass = bass_of(chord)
    upper = [int(p) for p in np.flatnonzero(chord) if p != bass]
    outside = sorted((p for p in range(12) if not chord[p] and l[p] > 0), key=lambda p: (-l[p], p))
    plain = chord.astype(float)
    best = (l @ plain / np.linalg.norm(plain), plain)
    for h in range(1, len(upper) + 1):
        for held_up in itertools.combinations(upper, h):
            held = [bass, *held_up]
            near = set(held) | melody
            clash = lambda p: any(o in near and not (p in scale and o in scale) for o in ((p + 1) % 12, (p + 11) % 12))
            moving = [p for p in upper if p not in held_up] + [p for p in outside if p in scale and not clash(p)][:EXTRA]
            for q in itertools.product(range(STEPS + 1), repeat=len(moving)):
                if sum(q) > STEPS:
                    continue
                v = np.zeros(12); v[held] = 1
                for p, c in zip(moving, q):
                    v[p] = c / STEPS
                f = l @ v / np.linalg.norm(v)
                if f > best[0] + 1e-9:
                    best = (f, v)
    return best[1]


def main(path):
    pieces = pickle.load(open(path, 'rb'))
    halves = (pieces[::2], pieces[1::2])
    sims = {'the chord': [], 'with the inner voice': []}
    for fit, held in (halves, halves[::-1]):
        hmm, nets = C.train(fit)
        for d in held:
            for ch in C.chunks(d):
                chosen = C.harmonise(hmm, nets, ch, C.BLEND)
                mu, (tonic, minor) = expected_and_key(hmm, nets, ch)
                scale = {(tonic + s) % 12 for s in (MINOR_SCALE if minor else MAJOR_SCALE)}
                moved = [motion(c, m, scale, {pc for pc, *_ in b['sop']} if b else set()) for c, m, b in zip(chosen, mu, ch)]
                for name, vs in (('the chord', chosen), ('with the inner voice', moved)):
                    s = [b['low'] @ v / (np.linalg.norm(b['low']) * np.linalg.norm(v)) for b, v in zip(ch, vs)
                         if b is not None and b['low'].sum() > 0 and v.sum() > 0]
                    if s:
                        sims[name].append(np.mean(s))
    for name, v in sims.items():
        print(f'{name}: {np.mean(v):.4f}')


if __name__ == '__main__':
    main(sys.argv[1])
