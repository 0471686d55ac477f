#!/usr/bin/env python3
"""End-to-end speed: audio files -> MIDI files, Python basic-pitch 0.4.0 (ONNX Runtime) vs the Pianola CLI.

Usage: python3 scripts/bench_speed.py [--items N] [--devset DIR] [--bin PATH] [--passes 2] [--skip-exact]
                                      [--per-file]

Both sides load the model once and then transcribe the same files (the first N dev-set songs,
${PIANOLA_DEVSET:-target/devset}/*/audio.wav), audio file in, MIDI file out, with the same CPU budget:

  python-ort      basic_pitch.inference.predict(path, model_or_model_path=<Model>) + midi.write() per file,
                  files one after another in THIS process (basic-pitch's own CLI does the same). ORT with
                  its default threads (intra-op = cores), so it uses every core. Model loaded beforehand;
                  interpreter start-up, imports and the load are outside the time (load printed once).
  python-ort-1t   the same with SessionOptions(intra_op_num_threads=1): one core.
  native-jN / ort-jN / tract-jN / tract-exact-jN
                  ONE `pianola transcribe FILES... --out-dir D --backend B --jobs N` process for all files:
                  N threads, each loading its model once, files side by side (N = cores, and N = 1 for the
                  one-core comparison). The time is the whole process: start-up and model loads INCLUDED
                  (the CLI's own load time is printed beside it).
  ort-per-file    (--per-file) a fresh `pianola transcribe FILE -o OUT` process per file, as a user runs it
                  on one song: every file pays start-up and model load; one song's windows use every core.

Breakdown of Python's time (from the python-ort passes): inside the ONNX Runtime session.run calls,
inside librosa.load (decode + soxr resample), and the rest (windowing, unwrap, note decoding, MIDI).
Bound (for the ONNX Runtime backend): the Rust CLI's ort backend runs the same kernels, so it cannot take
less time than the model's single-thread session.run time divided over the cores; python-ort's wall time
over that is the best ratio ort-jN can reach on this machine. The native engine computes the model
itself and is not bound by it.

Each system runs over all files `--passes` times (passes interleaved across systems); the best total wall
time per system is kept. Realtime factor = total audio seconds / total wall seconds.
Target printed: ort (all cores) >= 3x python-ort. Exits non-zero only on errors, never on a missed target.
Prerequisites: pip install --no-deps basic-pitch==0.4.0 onnxruntime librosa 'resampy>=0.2.2,<0.4.3' scipy
scikit-learn soundfile pretty_midi; cargo build --release --features onnxruntime,assert_process_allocs,standalone
--bin pianola; cargo xtask fetch-model --with-onnxruntime (models/libonnxruntime.so).
"""
import argparse
import contextlib
import io
import glob
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave

ROOT = pathlib.Path(__file__).resolve().parent.parent


def audio_seconds(path):
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class TimedSession:
    """Wraps an onnxruntime.InferenceSession and sums the time spent in run()."""

    def __init__(self, session):
        self.session = session
        self.seconds = 0.0
        self.calls = 0

    def run(self, *args, **kwargs):
        t = time.perf_counter()
        out = self.session.run(*args, **kwargs)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out

    def __getattr__(self, name):
        return getattr(self.session, name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--devset", default=os.environ.get("PIANOLA_DEVSET", str(ROOT / "target/devset")))
    ap.add_argument("--bin", default=str(ROOT / "target/release/pianola"))
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--skip-exact", action="store_true", help="leave out tract-exact (slow)")
    ap.add_argument("--per-file", action="store_true", help="also time one process per file (ort)")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.devset, "*", "audio.wav")))[: args.items]
    if not files:
        sys.exit(f"error: no {args.devset}/*/audio.wav")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"error: {args.bin} missing; cargo build --release --features onnxruntime,assert_process_allocs,standalone --bin pianola")
    total_audio = sum(audio_seconds(f) for f in files)
    cores = os.cpu_count() or 1
    try:
        cores = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except Exception:
        pass

    logging.disable(logging.WARNING)  # basic-pitch warns about absent TF/CoreML/TFLite
    import numpy as np  # noqa: F401
    import onnxruntime as ort
    import librosa
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
    py_threads = model_default.model.get_session_options().intra_op_num_threads
    model_default.model = TimedSession(model_default.model)

    model_1t = inference.Model(onnx_path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    model_1t.model = TimedSession(ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"]))

    # librosa.load (audio decode + resample to 22050 Hz) is looked up on the module at call time.
    load_timer = {"s": 0.0}
    real_load = librosa.load

    def timed_load(*a, **k):
        t = time.perf_counter()
        r = real_load(*a, **k)
        load_timer["s"] += time.perf_counter() - t
        return r

    librosa.load = timed_load

    out_root = tempfile.mkdtemp(prefix="pianola-bench-")

    def run_python(model, tag):
        """Returns (wall s, session.run s, librosa.load s) for one pass over the files."""
        run0, load0 = model.model.seconds, load_timer["s"]
        t = 0.0
        for i, f in enumerate(files):
            out = os.path.join(out_root, f"{tag}-{i}.mid")
            s = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # basic-pitch prints a line per file
                _, midi, _ = inference.predict(f, model_or_model_path=model)
            midi.write(out)
            t += time.perf_counter() - s
            if not os.path.getsize(out):
                raise RuntimeError(f"{tag}: empty MIDI for {f}")
        return t, model.model.seconds - run0, load_timer["s"] - load0

    def run_cli_batch(backend, jobs):
        """One process for all files. Returns (wall s, the CLI's summed model-load s)."""
        out = os.path.join(out_root, f"{backend}-j{jobs}")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [args.bin, "transcribe", *files, "--out-dir", out, "--backend", backend, "--jobs", str(jobs)]
        s = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.perf_counter() - s
        err = r.stderr.decode()
        if r.returncode != 0 or len(glob.glob(os.path.join(out, "*.mid"))) != len(files):
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {err[-2000:]}")
        m = re.search(r"model loads ([0-9.]+) s", err)
        return t, float(m.group(1)) if m else float("nan")

    def run_cli_per_file(backend):
        t = 0.0
        for i, f in enumerate(files):
            out = os.path.join(out_root, f"{backend}-single-{i}.mid")
            if os.path.exists(out):
                os.remove(out)
            cmd = [args.bin, "transcribe", f, "-o", out, "--backend", backend]
            s = time.perf_counter()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            t += time.perf_counter() - s
            if r.returncode != 0 or not os.path.exists(out):
                raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
        return t, float("nan")

    # name, threads, what the time includes, function
    systems = [
        ("python-ort", f"ORT intra-op {py_threads or cores} (default)", "no: loaded once before", lambda: run_python(model_default, "py")),
        ("python-ort-1t", "ORT intra-op 1", "no: loaded once before", lambda: run_python(model_1t, "py1t")),
    ]
    backends = ["native", "ort", "tract"] + ([] if args.skip_exact else ["tract-exact"])
    for b in backends:
        systems.append((f"{b}-j{cores}", f"{cores} workers x 1", "yes: 1 process, 1 load/worker", lambda b=b: run_cli_batch(b, cores)))
    systems.append(("native-j1", "1 worker x 1", "yes: 1 process, 1 load", lambda: run_cli_batch("native", 1)))
    systems.append(("ort-j1", "1 worker x 1", "yes: 1 process, 1 load", lambda: run_cli_batch("ort", 1)))
    if args.per_file:
        systems.append(("ort-per-file", f"{cores} (windows split)", "yes: process + load per file", lambda: run_cli_per_file("ort")))

    # One untimed warm-up file per Python model (first-run allocations); the CLI runs cold anyway.
    for m in (model_default, model_1t):
        with contextlib.redirect_stdout(io.StringIO()):
            inference.predict(files[0], model_or_model_path=m)

    load0 = os.getloadavg()
    best = {name: None for name, *_ in systems}
    for p in range(args.passes):
        for name, _, _, fn in systems:
            r = fn()
            print(f"  pass {p + 1} {name:16s} {r[0]:8.2f} s", file=sys.stderr, flush=True)
            if best[name] is None or r[0] < best[name][0]:
                best[name] = r

    print(f"files: {len(files)} x ~{total_audio / len(files):.1f} s = {total_audio:.1f} s audio "
          f"({args.devset}), best of {args.passes} passes; nproc = {cores}")
    newer = [str(p) for p in (ROOT / "src").rglob("*.rs") if p.stat().st_mtime > os.path.getmtime(args.bin)]
    print(f"load average before/after: {load0[0]:.2f} / {os.getloadavg()[0]:.2f}"
          + (f"; WARNING: {args.bin} older than {len(newer)} src file(s)" if newer else ""))
    print(f"python basic-pitch {basic_pitch_version()} onnxruntime {ort.__version__}; "
          f"python model load (once, outside the times): {py_load_s * 1000:.0f} ms")
    print()
    print(f"| {'system':16s} | {'threads':28s} | {'start-up + load in time':30s} | {'wall s':>7s} | {'RTF':>7s} |")
    print(f"|{'-' * 18}|{'-' * 30}|{'-' * 32}|{'-' * 9}|{'-' * 9}|")
    rtf = {}
    for name, threads, incl, _ in systems:
        w = best[name][0]
        rtf[name] = total_audio / w
        if not name.startswith("python") and best[name][1] == best[name][1]:
            incl = f"{incl} ({best[name][1]:.2f} s)"
        print(f"| {name:16s} | {threads:28s} | {incl:30s} | {w:7.2f} | {rtf[name]:6.1f}x |")
    print()
    for base in ("python-ort", "python-ort-1t"):
        print(f"vs {base}: " + ", ".join(f"{n} {rtf[n] / rtf[base]:.2f}x" for n, *_ in systems if not n.startswith("python")))

    # Where Python's time goes, and what that allows.
    wall, run_s, load_s = best["python-ort"]
    wall1, run1_s, load1_s = best["python-ort-1t"]
    print()
    print(f"python-ort time: session.run {run_s:.2f} s ({100 * run_s / wall:.0f}%), librosa.load {load_s:.2f} s "
          f"({100 * load_s / wall:.0f}%), rest {wall - run_s - load_s:.2f} s ({100 * (wall - run_s - load_s) / wall:.0f}%) of {wall:.2f} s")
    print(f"python-ort-1t time: session.run {run1_s:.2f} s ({100 * run1_s / wall1:.0f}%) of {wall1:.2f} s; "
          f"model alone on one core: {total_audio / run1_s:.1f}x realtime")
    floor = run1_s / cores
    print(f"bound: the same model runs {run1_s:.2f} s on one core -> >= {floor:.2f} s on {cores} cores even with nothing else; "
          f"python-ort / that = {wall / floor:.2f}x is the most any pipeline on this model can reach here")
    # The default engine (issue #16): the CLI's default jobs and --jobs 1, against Python as it
    # runs by default (every core).
    for name in (f"native-j{cores}", "native-j1"):
        r = rtf[name] / rtf["python-ort"]
        print(f"target {name} >= 3x python-ort: {r:.2f}x -> {'MET' if r >= 3 else 'NOT MET'}")
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
