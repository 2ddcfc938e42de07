"""One benchmark method in a fresh Python process, so its wall time and peak memory are its own.

The parent (:func:`run_in_fresh_process`) starts ``python -m napari_entrust.benchmark.method_process
SPEC`` with the run described as one JSON argument; the child loads the method's models, predicts
every case, writes the same files as ``entrust predict`` and records its timings in ``run.json``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import EntrustError
from .methods import METHODS, Method
from .tensor_memory import peak_tensor_bytes, tensor_bytes

RUN_FILE = "run.json"


class PeakMemory:
    """Highest resident memory of this process while the block runs (sampled every 2 ms)."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._done.wait(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _predictor(method: Method, models_dir: Path, samples: int, steps: int):
    """Load the method's models; returns (predict(case) -> prediction, parameter count, the modules
    it holds between cases)."""
    from ..progress import run_to_end
    from .baselines import load_baseline, parameter_count, run_baseline

    if method.family == "entrust":
        from ..inference.engine import predict_case
        from ..model.checkpoint import load_checkpoint
        from ..model.config import SamplingConfig

        file = method.files[0]
        bundle = load_checkpoint(models_dir / file if file else None)
        sampling = SamplingConfig(samples=samples, steps=steps, **method.sampling)
        params = parameter_count(bundle.net) + parameter_count(bundle.calibration)
        return (lambda case: predict_case(case, bundle, sampling)), params, [bundle.net, bundle.calibration]
    paths = [models_dir / f for f in method.files]
    if method.at_once:
        members = [load_baseline(p) for p in paths]
        params = sum(parameter_count(m.net) for m in members)
        held = [m.net for m in members]
    else:  # one at a time: only the paths are held; each member is loaded when its pass comes

        def members(i: int):
            return load_baseline(paths[i])

        params = parameter_count(load_baseline(paths[0]).net) * len(paths)
        held = []

    def predict(case):
        return run_to_end(run_baseline(case, members, n_members=len(paths), passes=method.passes, seed=0))

    return predict, params, held


def run_method(
    method: Method, case_dirs: list[Path], out_dir: Path, models_dir: Path, samples: int, steps: int
) -> dict:
    """Predict every case with one method and write its outputs; call in a fresh process."""
    from ..io.loader import load_case
    from ..outputs.prediction_folder import write_arrays, write_prediction

    t_process = time.perf_counter()
    cases = [load_case(c) for c in case_dirs]  # read before measuring: the memory is the method's
    seconds = []
    with PeakMemory() as memory:
        t = time.perf_counter()
        predict, params, held = _predictor(method, models_dir, samples, steps)
        load_s = time.perf_counter() - t
        for case in cases:
            t = time.perf_counter()
            pred = predict(case)
            seconds.append(time.perf_counter() - t)
            if method.family == "entrust":
                write_prediction(case, pred, out_dir / case.name, overwrite=True)
            else:
                write_arrays(
                    case, pred.maps(), out_dir / case.name, {**pred.summary, "method": method.name}, overwrite=True
                )
    # one more pass over the first case under the profiler (it slows the ops it records, so not timed)
    _, live_peak = peak_tensor_bytes(lambda: predict(cases[0]))
    weights = tensor_bytes(held)
    record = {
        "method": method.key,
        "name": method.name,
        "cases": [c.name for c in cases],
        "seconds_per_case": seconds,
        "mean_seconds": float(np.mean(seconds)),
        "model_load_s": load_s,
        "peak_rss_mb": memory.peak / 2**20,
        "working_memory_mb": (memory.peak - memory.start) / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tensor_memory_mb": (weights + live_peak) / 2**20,  # peak live tensors + weights held (the paper's)
        "held_weights_mb": weights / 2**20,
        "parameters": params,
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
        "process_seconds": time.perf_counter() - t_process,
    }
    (out_dir / RUN_FILE).write_text(json.dumps(record, indent=2))
    return record


def run_in_fresh_process(
    method: Method, case_dirs: list[Path], out_dir: Path, models_dir: Path, samples: int, steps: int
) -> dict:
    """:func:`run_method` in a new Python process; returns its record, with the process's own start-up."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "method": method.key,
        "cases": [str(c) for c in case_dirs],
        "out": str(out_dir),
        "models": str(models_dir),
        "samples": samples,
        "steps": steps,
    }
    cmd = [sys.executable, "-m", __name__, json.dumps(spec)]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise EntrustError(f"benchmark method {method.name!r} failed in its process:\n{done.stderr[-3000:]}")
    record = json.loads((out_dir / RUN_FILE).read_text())
    record["wall_s_with_startup"] = time.perf_counter() - t
    return record


def main(spec: str) -> int:
    """The child process: ``spec`` is the JSON :func:`run_in_fresh_process` passes."""
    s = json.loads(spec)
    method = next(m for m in METHODS if m.key == s["method"])
    run_method(method, [Path(c) for c in s["cases"]], Path(s["out"]), Path(s["models"]), s["samples"], s["steps"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
