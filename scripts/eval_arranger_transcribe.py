"""Reference transcriptions for the arranger's dev-set evaluation (Python basic-pitch 0.4.0, ONNX).

Writes, per item of DATA_DIR, OUT/<id>/notes.json ({"n_frames": N, "notes": [[start_s, end_s,
pitch, amplitude], ...]}) and OUT/<id>/contour.f32 (row-major float32 LE [n_frames][264]), the
same layout as /work/fixtures. Only used when those fixtures are not there.

usage: python3 scripts/eval_arranger_transcribe.py DATA_DIR OUT_DIR
"""
import json, os, sys
import numpy as np
import basic_pitch
from basic_pitch.inference import predict, Model

data, out = sys.argv[1], sys.argv[2]
onnx = os.path.join(os.path.dirname(basic_pitch.__file__), "saved_models", "icassp_2022", "nmp.onnx")
model = Model(onnx)
for meta in json.load(open(os.path.join(data, "index.json"))):
    d = os.path.join(out, meta["id"])
    if os.path.exists(os.path.join(d, "notes.json")):
        continue
    os.makedirs(d, exist_ok=True)
    output, _, events = predict(os.path.join(data, meta["id"], "audio.wav"), model)
    contour = np.asarray(output["contour"], dtype="<f4")
    contour.tofile(os.path.join(d, "contour.f32"))
    notes = sorted([float(s), float(e), int(p), float(a)] for s, e, p, a, _ in events)
    json.dump({"n_frames": int(contour.shape[0]), "notes": notes}, open(os.path.join(d, "notes.json"), "w"))
    print(meta["id"], len(notes), contour.shape, flush=True)
