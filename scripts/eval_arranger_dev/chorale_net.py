"""Writes src/arrange/chorale_net.rs: the lone-melody harmoniser's second opinion, a small network
that reads the melody around a beat (two beats either side) and the HMM's expectation of the lower
voices (src/arrange/chorale_stats.rs), and predicts the pitch classes the alto, tenor and bass
sound on the beat (their unit vector, in the key's frame). Trained on the same Bach chorales as the
HMM (music21's corpus minus the dev set's pieces, from chorale_corpus.py).

usage: python3 chorale_net.py /tmp/chorales.pkl src/arrange/chorale_net.rs   (~1 min; sklearn)
       python3 chorale_net.py /tmp/chorales.pkl --cv    (held-out score, trained on one half)

Inputs per beat (INPUTS, in this order, pitch classes as semitones above the key's tonic): the
melody's duration in beats on each pitch class in beats b-2 .. b+2 (5 x 12); which pitch classes
start on beat b (12); whether beat b+1 and beat b-1 have no melody (2); the HMM's expected lower
voices on beat b (its chord posterior times each chord's mean lower voices, 12). The HMM features
of the training beats are cross-fitted (each half's from an HMM counted on the other half) so the
network learns how far to trust an HMM that has not seen the piece. One network per mode; ReLU,
64 hidden units, L2 0.01, Adam with early stopping, random_state 0 (deterministic). The harmoniser
blends BLEND of the network's prediction with the rest of the HMM's.

Measured (--cv: trained on half the chorales, scored on the other half's 48-beat excerpts with the
keys found from their melodies, per-beat cosine of the chosen voicing against the lower voices):
the HMM alone 0.638, with the network 0.675.
"""
import pickle, sys
import numpy as np
from sklearn.neural_network import MLPRegressor
from chorale_tables import LABELS, ON_BEAT, count_hmm

OFFSETS = (-2, -1, 0, 1, 2)
INPUTS = 12 * len(OFFSETS) + 12 + 2 + 12
HIDDEN = 64
BLEND = 0.7
CHUNK = 48
AE_MAJOR = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122])
AE_MINOR = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623])
IV = {'M': (0, 4, 7), 'm': (0, 3, 7), 'd': (0, 3, 6)}


class Hmm:
    """chorale_tables.py's HMM (the same counts), per mode."""

    def __init__(self, pieces):
        self.m = {minor: count_hmm(pieces, minor) for minor in (False, True)}

    def lower(self, beats, key):
        """Per beat, the expected lower voices in the key's frame (forward-backward)."""
        t0, minor = key; M = self.m[minor]; n = len(beats)
        ev = np.zeros((n, LABELS))
        for i, b in enumerate(beats):
            if b:
                for pc, ov, on, onb in b['sop']:
                    ev[i] += ov * (ON_BEAT if onb else 1.0) * M['E'][:, (pc - t0) % 12]
        fw = np.zeros((n, LABELS)); bw = np.zeros((n, LABELS))
        fw[0] = M['Pr'] + ev[0]
        for i in range(1, n):
            fw[i] = np.logaddexp.reduce(fw[i - 1][:, None] + M['T'], axis=0) + ev[i]
        for i in range(n - 2, -1, -1):
            bw[i] = np.logaddexp.reduce(M['T'] + (ev[i + 1] + bw[i + 1])[None, :], axis=1)
        p = fw + bw; p = np.exp(p - p.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
        return p @ M['Low']


def sung(b):
    return b is not None and bool(b['sop'])


def features(beats, key, hmm_lower):
    t0 = key[0]; n = len(beats); X = np.zeros((n, INPUTS))
    for i in range(n):
        for k, o in enumerate(OFFSETS):
            j = i + o
            if 0 <= j < n and beats[j] is not None:
                for pc, ov, on, onb in beats[j]['sop']:
                    X[i, 12 * k + (pc - t0) % 12] += ov
        if beats[i] is not None:
            for pc, ov, on, onb in beats[i]['sop']:
                if onb:
                    X[i, 60 + (pc - t0) % 12] = 1.0
        X[i, 72] = float(i + 1 >= n or not sung(beats[i + 1]))
        X[i, 73] = float(i == 0 or not sung(beats[i - 1]))
        X[i, 74:86] = hmm_lower[i]
    return X


def chunks(d):
    bs = d['beats']
    return [bs[i:i + CHUNK] for i in range(0, max(1, len(bs) - CHUNK + 1), CHUNK)]


def occupied(beats):
    return [b if sung(b) else None for b in beats]


def train(pieces):
    """The HMM on all pieces and one network per mode on cross-fitted HMM features."""
    halves = (pieces[::2], pieces[1::2])
    data = {False: ([], []), True: ([], [])}
    for fit, held in (halves, halves[::-1]):
        hmm = Hmm(fit)
        for d in held:
            key = (d['tonic'], d['minor'])
            for ch in chunks(d):
                X = features(ch, key, hmm.lower(occupied(ch), key))
                for x, b in zip(X, ch):
                    if sung(b) and b['low'].sum() > 0:
                        data[key[1]][0].append(x)
                        data[key[1]][1].append(np.roll(b['low'] / np.linalg.norm(b['low']), -key[0]))
    nets = {}
    for minor in (False, True):
        X, Y = np.array(data[minor][0]), np.array(data[minor][1])
        nets[minor] = MLPRegressor(hidden_layer_sizes=(HIDDEN,), alpha=0.01, max_iter=300, early_stopping=True, random_state=0).fit(X, Y)
    return Hmm(pieces), nets


def corr(a, b):
    a = a - a.mean(); b = b - b.mean(); d = np.sqrt((a * a).sum() * (b * b).sum())
    return (a * b).sum() / d if d > 0 else 0.0


def harmonise(hmm, nets, beats, blend):
    """harmony::harmonise_melody: the 3 best keys by the melody's profile (softmax 10), the blended
    expectation, the closest triad alone or with one more tone. Returns per-beat pitch-class sets."""
    prof = np.zeros(12)
    for b in beats:
        if b:
            for pc, ov, on, onb in b['sop']:
                prof[pc] += ov
    ks = {(t, m): corr(prof, np.roll(AE_MINOR if m else AE_MAJOR, t)) for m in (False, True) for t in range(12)}
    top = sorted(ks, key=lambda k: -ks[k])[:3]
    w = np.exp(10 * np.array([ks[k] - ks[top[0]] for k in top])); w /= w.sum()
    occ = occupied(beats); mu = np.zeros((len(beats), 12)); cands = []
    for key, wk in zip(top, w):
        t0, minor = key
        h = hmm.lower(occ, key)
        rel = h if nets is None else blend * nets[minor].predict(features(beats, key, h)) + (1 - blend) * h
        mu += wk * np.roll(rel, t0, axis=1)
        for r, q in hmm.m[minor]['labs']:
            v = np.zeros(12); v[[(r + t0 + i) % 12 for i in IV[q]]] = 1; cands.append(v)
            for x in range(12):
                if not v[x]:
                    u = v.copy(); u[x] = 1; cands.append(u)
    V = np.array(cands); norms = np.sqrt(V.sum(1))
    return [V[int(np.argmax((V @ m) / norms))] for m in mu]


def held_out(pieces):
    A, B = pieces[::2], pieces[1::2]
    for nets_on in (False, True):
        sims = []
        for fit, held in ((A, B), (B, A)):
            hmm, nets = train(fit)
            for d in held:
                for ch in chunks(d):
                    chosen = harmonise(hmm, nets if nets_on else None, ch, BLEND)
                    s = [b['low'] @ v / (np.linalg.norm(b['low']) * np.linalg.norm(v)) for b, v in zip(ch, chosen)
                         if b is not None and b['low'].sum() > 0 and v.sum() > 0]
                    if s:
                        sims.append(np.mean(s))
        print(('with the network' if nets_on else 'the HMM alone') + f': {np.mean(sims):.4f}', flush=True)


def rust(nets):
    # Weights the L2 penalty drove to nothing (1e-70: not an f32) are written as 0.
    f = lambda v: "0.0" if abs(v) < 1e-20 else f"{v:.5e}"
    out = ["//! Generated by scripts/eval_arranger_dev/chorale_net.py from the Bach chorales of music21's",
           "//! corpus (the dev set's pieces left out): the lone-melody harmoniser's network, one per mode,",
           "//! predicting the lower voices' pitch classes from the melody around a beat and the HMM's",
           "//! expectation. Inputs in `harmony::net_inputs`' order. Do not edit by hand.", "",
           f"pub const N_INPUTS: usize = {INPUTS};", f"pub const N_HIDDEN: usize = {HIDDEN};",
           f"/// Share of the network's prediction in the expected lower voices (the rest: the HMM's).",
           f"pub const BLEND: f64 = {BLEND};", "",
           "/// A one-hidden-layer ReLU network: `out = w2 relu(w1 x + b1) + b2`.",
           "pub struct Net {", "    pub w1: [[f32; N_INPUTS]; N_HIDDEN],", "    pub b1: [f32; N_HIDDEN],",
           "    pub w2: [[f32; N_HIDDEN]; 12],", "    pub b2: [f32; 12],", "}", ""]
    for minor in (False, True):
        n = nets[minor]
        w1, w2 = n.coefs_[0].T, n.coefs_[1].T
        out.append(f"/// The {'minor' if minor else 'major'} keys' network.")
        out.append("#[rustfmt::skip]")
        out.append(f"pub const NET_{'MINOR' if minor else 'MAJOR'}: Net = Net {{")
        out.append("    w1: [")
        out += ["        [" + ", ".join(map(f, r)) + "]," for r in w1]
        out.append("    ],")
        out.append("    b1: [" + ", ".join(map(f, n.intercepts_[0])) + "],")
        out.append("    w2: [")
        out += ["        [" + ", ".join(map(f, r)) + "]," for r in w2]
        out.append("    ],")
        out.append("    b2: [" + ", ".join(map(f, n.intercepts_[1])) + "],")
        out.append("};")
        out.append("")
    return "\n".join(out)


if __name__ == '__main__':
    D = pickle.load(open(sys.argv[1], 'rb'))
    if sys.argv[2] == '--cv':
        held_out(D)
    else:
        _, nets = train(D)
        open(sys.argv[2], 'w').write(rust(nets))
