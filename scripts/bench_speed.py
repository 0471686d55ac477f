#!/usr/bin/env python3
"""End-to-end speed: audio file -> MIDI file, Python basic-pitch 0.4.0 (ONNX Runtime) vs the Pianola CLI.

Usage: python3 scripts/bench_speed.py [--items N] [--devset DIR] [--bin PATH] [--passes 2]

Systems, all on the same files (the first N dev-set songs, ${PIANOLA_DEVSET:-target/devset}/*/audio.wav):
  python-ort       basic_pitch.inference.predict(path, model_or_model_path=<Model>) + midi.write(), in THIS
                   process, model loaded once beforehand (interpreter start-up, imports and model load are
                   excluded from the per-file times; the load is reported once). ORT default threads.
  python-ort-1t    the same, but the Model's onnxruntime session is replaced by one made with
                   SessionOptions(intra_op_num_threads=1), like the Rust CLI.
  ort / tract / tract-exact
                   `pianola transcribe SONG -o OUT.mid --backend B`, a fresh process per file, so each file's
                   time INCLUDES process start-up and model load (the Rust CLI uses 1 intra-op thread).

Each system runs over all files `--passes` times (default 2, passes interleaved across systems); the best
total wall time per system is kept. Realtime factor = total audio seconds / total wall seconds.
Target printed: ort >= 3x python (default threads). Exits non-zero only on errors, never on a missed target.
Prerequisites: pip install --no-deps basic-pitch==0.4.0 onnxruntime librosa 'resampy>=0.2.2,<0.4.3' scipy
scikit-learn soundfile pretty_midi; cargo build --release --features onnxruntime --bin pianola;
cargo xtask fetch-model --with-onnxruntime (models/libonnxruntime.so).
"""
import argparse
import contextlib
import io
import glob
import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import wave

ROOT = pathlib.Path(__file__).resolve().parent.parent


def audio_seconds(path):
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--devset", default=os.environ.get("PIANOLA_DEVSET", str(ROOT / "target/devset")))
    ap.add_argument("--bin", default=str(ROOT / "target/release/pianola"))
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--skip-python-1t", action="store_true")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.devset, "*", "audio.wav")))[: args.items]
    if not files:
        sys.exit(f"error: no {args.devset}/*/audio.wav")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"error: {args.bin} missing; cargo build --release --features onnxruntime --bin pianola")
    total_audio = sum(audio_seconds(f) for f in files)

    logging.disable(logging.WARNING)  # basic-pitch warns about absent TF/CoreML/TFLite
    import numpy as np  # noqa: F401
    import onnxruntime as ort
    import basic_pitch
    from basic_pitch import inference

    onnx_path = pathlib.Path(basic_pitch.__file__).parent / "saved_models/icassp_2022/nmp.onnx"
    if not onnx_path.exists():
        sys.exit(f"error: {onnx_path} missing")

    t0 = time.perf_counter()
    model_default = inference.Model(onnx_path)
    py_load_s = time.perf_counter() - t0
    if model_default.model_type != inference.Model.MODEL_TYPES.ONNX:
        sys.exit("error: basic-pitch did not load the ONNX model")

    model_1t = None
    if not args.skip_python_1t:
        model_1t = inference.Model(onnx_path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        model_1t.model = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])

    out_dir = tempfile.mkdtemp(prefix="pianola-bench-")

    def run_python(model, tag):
        t = 0.0
        for i, f in enumerate(files):
            out = os.path.join(out_dir, f"{tag}-{i}.mid")
            s = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # basic-pitch prints a line per file
                _, midi, _ = inference.predict(f, model_or_model_path=model)
            midi.write(out)
            t += time.perf_counter() - s
            if not os.path.getsize(out):
                raise RuntimeError(f"{tag}: empty MIDI for {f}")
        return t

    def run_cli(backend):
        t = 0.0
        for i, f in enumerate(files):
            out = os.path.join(out_dir, f"{backend}-{i}.mid")
            if os.path.exists(out):
                os.remove(out)
            cmd = [args.bin, "transcribe", f, "-o", out, "--backend", backend]
            s = time.perf_counter()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            t += time.perf_counter() - s
            if r.returncode != 0 or not os.path.exists(out):
                raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
        return t

    systems = [("python-ort", lambda: run_python(model_default, "py"))]
    if model_1t is not None:
        systems.append(("python-ort-1t", lambda: run_python(model_1t, "py1t")))
    for b in ("ort", "tract", "tract-exact"):
        systems.append((b, lambda b=b: run_cli(b)))

    # One untimed warm-up file per Python model (first-run allocations), the CLI is timed cold per process anyway.
    for m in [model_default] + ([model_1t] if model_1t is not None else []):
        with contextlib.redirect_stdout(io.StringIO()):
            inference.predict(files[0], model_or_model_path=m)

    load0 = os.getloadavg()
    best = {name: float("inf") for name, _ in systems}
    for p in range(args.passes):
        for name, fn in systems:
            t = fn()
            print(f"  pass {p + 1} {name:14s} {t:8.2f} s", file=sys.stderr, flush=True)
            best[name] = min(best[name], t)

    nproc = os.cpu_count()
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except Exception:
        pass
    threads = {
        "python-ort": "ORT default (intra-op = cores)",
        "python-ort-1t": "ORT intra-op 1",
        "ort": "ORT intra-op 1",
        "tract": "1",
        "tract-exact": "1",
    }
    incl = {"python-ort": "no (loaded once)", "python-ort-1t": "no (loaded once)"}

    print(f"files: {len(files)} x ~{total_audio / len(files):.1f} s = {total_audio:.1f} s audio "
          f"({args.devset}), best of {args.passes} passes; nproc = {nproc}")
    newer = [str(p) for p in (ROOT / "src").rglob("*.rs") if p.stat().st_mtime > os.path.getmtime(args.bin)]
    print(f"load average before/after: {load0[0]:.2f} / {os.getloadavg()[0]:.2f}"
          + (f"; WARNING: {args.bin} older than {len(newer)} src file(s)" if newer else ""))
    print(f"python basic-pitch {basic_pitch_version()} onnxruntime {ort.__version__}; "
          f"python model load (once, not in table): {py_load_s * 1000:.0f} ms")
    print()
    print(f"| {'system':14s} | {'threads':30s} | {'load+startup in time':22s} | {'wall s':>8s} | {'s/file':>7s} | {'RTF':>7s} |")
    print(f"|{'-' * 16}|{'-' * 32}|{'-' * 24}|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    rtf = {}
    for name, _ in systems:
        w = best[name]
        rtf[name] = total_audio / w
        print(f"| {name:14s} | {threads[name]:30s} | {incl.get(name, 'yes (process per file)'):22s} | "
              f"{w:8.2f} | {w / len(files):7.3f} | {rtf[name]:6.1f}x |")
    print()
    for base in ["python-ort"] + (["python-ort-1t"] if model_1t is not None else []):
        for name in ("ort", "tract", "tract-exact"):
            print(f"{name}/{base}: {rtf[name] / rtf[base]:.2f}x")
    r = rtf["ort"] / rtf["python-ort"]
    print(f"target ort >= 3x python (default threads): {r:.2f}x -> {'MET' if r >= 3 else 'NOT MET'}")
    return 0


def basic_pitch_version():
    try:
        from importlib.metadata import version
        return version("basic-pitch")
    except Exception:
        return "?"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # errors only -> non-zero
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
