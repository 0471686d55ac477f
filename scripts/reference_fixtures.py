#!/usr/bin/env python3
"""Reference fixtures for Pianola's parity tests, made with Python basic-pitch 0.4.0 (ONNX model).

Usage: python3 scripts/reference_fixtures.py DEVSET_DIR OUT_DIR [--items N]

DEVSET_DIR is a dev set built by `python3 ../shared/eval/make_devset.py DIR` (one folder per item with
`audio.wav`). For each item (ids sorted; the first N with --items) this writes OUT_DIR/<id>/:

  audio_22050.f32   mono 22050 Hz samples exactly as basic-pitch's inference loads them
                    (librosa.load(path, sr=22050, mono=True)), float32 little-endian
  note.f32          unwrapped model outputs from basic_pitch.inference.run_inference with the ONNX
  onset.f32         model, row-major float32 LE: note/onset [n_frames][88], contour [n_frames][264]
  contour.f32
  notes.json        {"n_frames": N, "notes": [[start_s, end_s, midi_pitch, amplitude], ...]} from
                    basic_pitch.inference.predict at its defaults (onset 0.5, frame 0.3, min note
                    127.70 ms, infer onsets, melodia trick, no frequency limits)
  decode_only.json  the same format, from note_creation.model_output_to_notes called directly on the
                    frames written above with the same defaults (checks the Rust decoder alone)

Notes in both JSON files are sorted by (start, pitch, end, amplitude).

Requirements: pip install --no-deps basic-pitch==0.4.0, plus onnxruntime librosa 'resampy>=0.2.2,<0.4.3'
scipy scikit-learn soundfile pretty_midi mir_eval.
"""

import argparse
import contextlib
import io
import json
import logging
import os
import pathlib
import sys

logging.disable(logging.WARNING)  # basic_pitch warns about every absent backend at import

import numpy as np  # noqa: E402
import librosa  # noqa: E402

import basic_pitch  # noqa: E402
from basic_pitch import inference  # noqa: E402
from basic_pitch import note_creation  # noqa: E402
from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP  # noqa: E402

ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MIN_NOTE_MS = 127.70


def onnx_model_path() -> pathlib.Path:
    return basic_pitch.build_icassp_2022_model_path(basic_pitch.FilenameSuffix.onnx)


def write_f32(path: pathlib.Path, array: np.ndarray) -> None:
    a = np.ascontiguousarray(array, dtype="<f4")
    path.write_bytes(a.tobytes(order="C"))


def note_rows(note_events) -> list:
    rows = [[float(s), float(e), int(p), float(a)] for s, e, p, a, *_ in note_events]
    rows.sort(key=lambda r: (r[0], r[2], r[1], r[3]))
    return rows


def write_notes(path: pathlib.Path, n_frames: int, rows: list) -> None:
    with open(path, "w") as f:
        json.dump({"n_frames": int(n_frames), "notes": rows}, f)
        f.write("\n")


def item_ids(devset: pathlib.Path) -> list:
    return sorted(p.name for p in devset.iterdir() if (p / "audio.wav").is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("devset", type=pathlib.Path)
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--items", type=int, default=None, help="only the first N items (sorted ids)")
    args = ap.parse_args()

    ids = item_ids(args.devset)
    if not ids:
        print(f"no items with audio.wav under {args.devset}", file=sys.stderr)
        return 1
    if args.items is not None:
        ids = ids[: args.items]

    model = inference.Model(onnx_model_path())
    if model.model_type != inference.Model.MODEL_TYPES.ONNX:
        print(f"expected the ONNX backend, got {model.model_type}", file=sys.stderr)
        return 1
    min_note_len = int(np.round(MIN_NOTE_MS / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP)))

    args.out.mkdir(parents=True, exist_ok=True)
    for item in ids:
        wav = args.devset / item / "audio.wav"
        out = args.out / item
        out.mkdir(parents=True, exist_ok=True)

        # The exact samples inference feeds the model (same call as inference.get_audio_input).
        audio, _ = librosa.load(str(wav), sr=AUDIO_SAMPLE_RATE, mono=True)
        write_f32(out / "audio_22050.f32", audio)

        # End to end, as `basic-pitch` would do it (predict prints a line: keep stdout to one per item).
        with contextlib.redirect_stdout(io.StringIO()):
            model_output, _midi, note_events = inference.predict(
                wav,
                model,
                onset_threshold=ONSET_THRESHOLD,
                frame_threshold=FRAME_THRESHOLD,
                minimum_note_length=MIN_NOTE_MS,
            )
        n_frames = model_output["note"].shape[0]
        for key in ("note", "onset", "contour"):
            assert model_output[key].dtype == np.float32, (key, model_output[key].dtype)
            write_f32(out / f"{key}.f32", model_output[key])
        write_notes(out / "notes.json", n_frames, note_rows(note_events))

        # The decoder alone, on copies of exactly the frames written above.
        frames = {k: np.fromfile(out / f"{k}.f32", dtype="<f4").reshape(n_frames, -1) for k in model_output}
        _midi2, decoded = note_creation.model_output_to_notes(
            frames,
            onset_thresh=ONSET_THRESHOLD,
            frame_thresh=FRAME_THRESHOLD,
            min_note_len=min_note_len,
        )
        decode_rows = note_rows(decoded)
        write_notes(out / "decode_only.json", n_frames, decode_rows)

        print(
            f"{item}: {audio.shape[0]} samples, {n_frames} frames, "
            f"{len(note_events)} notes (predict), {len(decode_rows)} notes (decode only)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
