#!/usr/bin/env python3
"""The reference for the pitch tracker's parity test (tests/pitch_parity.rs): Python swift-f0 0.3.0
(ONNX Runtime, one thread) on 16 kHz mono audio given as raw little-endian float32, its pitch,
confidence and loudness per frame as JSON.

    python3 scripts/swift_f0_reference.py IN.f32 OUT.json
"""
import json
import sys

import numpy as np
from swift_f0 import SwiftF0

audio = np.fromfile(sys.argv[1], dtype="<f4")
r = SwiftF0(threads=1).detect(audio, 16000)
with open(sys.argv[2], "w") as f:
    json.dump({"pitch_hz": r.pitch_hz.tolist(), "confidence": r.confidence.tolist(), "loudness_db": r.loudness_db.tolist()}, f)
