#!/usr/bin/env python3
"""How much right-hand (future) context a Basic Pitch frame needs (Live mode's commit rule).

For frames of real songs, compares the posteriors the model gives when the frame sits k frames
before the end of its window with those it gives when it sits mid-window (60..110 of 172),
for k = 2..60. Prints per k: the median and p95 over frames of the largest |difference| over the
88 keys (note, onset), and how many cells per frame flip across the decoder's thresholds
(note >= 0.3, onset >= 0.5). A floor remains at every k: the model normalises its log-CQT by the
whole window's min and max, so no frame is independent of any sample in its window.

usage: python3 scripts/live_receptive_field.py [FIXTURES=target/fixtures] [ITEM ...]
       (needs numpy + onnxruntime; audio from FIXTURES/<item>/audio_22050.f32)
"""
import os, sys
import numpy as np
import onnxruntime as ort

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
W, H = 43844, 256


def main():
    fixtures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "fixtures")
    items = sys.argv[2:] or ["bach_bwv1.6-mix", "bach_bwv12.7-vocal", "monteverdi_madrigal.3.2-mix"]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(os.path.join(ROOT, "models", "nmp.onnx"), so)
    names = [x.name for x in s.get_outputs()]

    def run(x):
        o = dict(zip(names, s.run(None, {"serving_default_input_2:0": x[None, :, None].astype(np.float32)})))
        return o["StatefulPartitionedCall:1"][0], o["StatefulPartitionedCall:2"][0]

    res = {}
    for item in items:
        a = np.fromfile(os.path.join(fixtures, item, "audio_22050.f32"), dtype=np.float32)
        for base in [300 * H, 900 * H, 1500 * H, 2200 * H]:
            if base + W > len(a):
                continue
            rn, ro = run(a[base:base + W])
            for sh in range(0, 60):
                st = base - sh * H
                n, o = run(a[st:st + W])
                for i in range(172):
                    j = i - sh
                    if j < 60 or j > 110:
                        continue
                    k = int(171.27 - i)  # whole frames of audio to the right of frame i
                    dn, do = np.abs(n[i] - rn[j]), np.abs(o[i] - ro[j])
                    fn = np.sum((n[i] >= .3) != (rn[j] >= .3))
                    fo = np.sum((o[i] >= .5) != (ro[j] >= .5))
                    res.setdefault(k, []).append((dn.max(), do.max(), fn, fo))
    print("right ctx frames (ms) | n | note max|diff| median p95 | onset max|diff| median p95 | flips/frame note onset")
    for k in sorted(res):
        if k > 60:
            continue
        v = np.array(res[k])
        print(f"{k:3d} ({k * 256 / 22.05:4.0f}) | {len(v):4d} | {np.median(v[:, 0]):.3f} {np.quantile(v[:, 0], .95):.3f}"
              f" | {np.median(v[:, 1]):.3f} {np.quantile(v[:, 1], .95):.3f} | {v[:, 2].mean():.3f} {v[:, 3].mean():.4f}")


if __name__ == "__main__":
    main()
