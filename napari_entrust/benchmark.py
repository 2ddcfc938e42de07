"""``entrust benchmark``: EnTrust, its ablations and the UNet baselines on held-out phantoms.

The path: N phantom cases with seeds never trained on (9000 and up) are written to disk; every
method then runs in a fresh Python process (``python -m napari_entrust.benchmark METHOD ...``) that
loads its models, predicts each case and writes the same files as ``entrust predict``, measuring
wall time per case and the peak resident memory of that process alone; finally each method's
folder is scored by :mod:`napari_entrust.evaluation` and the table, the paper's ratios, the
dependence left between F_c, F_u and F_cf, JSON and plots are written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .benchmark_models import METHODS, Method
from .errors import EntrustError

Progress = Callable[[float, str], None]
UNET_BASELINES = ("unet", "unet_mc_dropout", "ensemble", "ensemble_sequential")


# -- held-out cases ------------------------------------------------------------------------------

def make_cases(folder: Path, n: int, spacing: int = 2, progress: Progress | None = None) -> list[Path]:
    """Write phantom cases 9000 … 9000 + n − 1 (reused when already there from an earlier run)."""
    from .phantom import GENERATOR_VERSION, make_phantom, save_phantom
    from .training_data import HELD_OUT_SEED0

    out = []
    for i in range(n):
        seed = HELD_OUT_SEED0 + i
        case_dir = folder / f"phantom-{seed:05d}"
        meta = case_dir / "truth" / "phantom.json"
        if progress:
            progress(i / n, f"held-out phantom {seed}")
        if meta.exists():
            m = json.loads(meta.read_text())
            if m.get("seed") == seed and m.get("generator_version") == GENERATOR_VERSION and m.get("spacing_mm") == spacing:
                out.append(case_dir)
                continue
        save_phantom(make_phantom(seed=seed, spacing=spacing), case_dir, overwrite=True)
        out.append(case_dir)
    return out


# -- one method in its own process ---------------------------------------------------------------

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
    """Load the method's models; returns (predict(case) -> prediction, parameter count)."""
    from .baselines import load_baseline, parameter_count

    if method.family == "entrust":
        from .checkpoint import load_checkpoint
        from .config import SamplingConfig
        from .engine import predict_case

        file = method.files[0]
        bundle = load_checkpoint(models_dir / file if file else None)
        sampling = SamplingConfig(samples=samples, steps=steps, **method.sampling)
        params = parameter_count(bundle.net) + parameter_count(bundle.calibration)
        return (lambda case: predict_case(case, bundle, sampling)), params
    from .baselines import run_baseline
    from .engine import run_to_end

    paths = [models_dir / f for f in method.files]
    if method.at_once:
        members = [load_baseline(p) for p in paths]
        params = sum(parameter_count(m.net) for m in members)
    else:  # one at a time: only the paths are held; each member is loaded when its pass comes
        members = lambda i: load_baseline(paths[i])  # noqa: E731
        params = parameter_count(load_baseline(paths[0]).net) * len(paths)

    def predict(case):
        return run_to_end(run_baseline(case, members, n_members=len(paths), passes=method.passes, seed=0))

    return predict, params


def run_method(method: Method, case_dirs: list[Path], out_dir: Path, models_dir: Path, samples: int,
               steps: int) -> dict:
    """Predict every case with one method and write its outputs; call in a fresh process."""
    from .io import load_case
    from .outputs import write_arrays, write_prediction

    t_process = time.perf_counter()
    cases = [load_case(c) for c in case_dirs]  # read before measuring: the memory is the method's
    seconds = []
    with PeakMemory() as memory:
        t = time.perf_counter()
        predict, params = _predictor(method, models_dir, samples, steps)
        load_s = time.perf_counter() - t
        for case in cases:
            t = time.perf_counter()
            pred = predict(case)
            seconds.append(time.perf_counter() - t)
            if method.family == "entrust":
                write_prediction(case, pred, out_dir / case.name, overwrite=True)
            else:
                write_arrays(case, {"mask": pred.mask, "prob": pred.prob, "samples": pred.samples,
                                    "trustmap": pred.trustmap, "entropy": pred.entropy,
                                    "mutual_info": pred.mutual_info},
                             out_dir / case.name, {**pred.summary, "method": method.name}, overwrite=True)
    import resource

    record = {"method": method.key, "name": method.name, "cases": [c.name for c in cases],
              "seconds_per_case": seconds, "mean_seconds": float(np.mean(seconds)), "model_load_s": load_s,
              "peak_rss_mb": memory.peak / 2 ** 20, "working_memory_mb": (memory.peak - memory.start) / 2 ** 20,
              "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "parameters": params, "threads": torch.get_num_threads(), "pid": os.getpid(),
              "process_seconds": time.perf_counter() - t_process}
    (out_dir / "run.json").write_text(json.dumps(record, indent=2))
    return record


def run_in_fresh_process(method: Method, case_dirs: list[Path], out_dir: Path, models_dir: Path, samples: int,
                         steps: int) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "napari_entrust.benchmark", method.key, "--out", str(out_dir), "--models",
           str(models_dir), "--samples", str(samples), "--steps", str(steps), *map(str, case_dirs)]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise EntrustError(f"benchmark method {method.name!r} failed in its process:\n{done.stderr[-3000:]}")
    record = json.loads((out_dir / "run.json").read_text())
    record["wall_s_with_startup"] = time.perf_counter() - t
    return record


# -- dependence left between the decomposed features ---------------------------------------------

def feature_dependence(bundle, case_dirs: list[Path], pixels: int = 2048, hsic_pixels: int = 512) -> dict:
    """Mean |Pearson correlation| between channels, and HSIC, for F_c–F_u, F_c–F_cf and F_u–F_cf.

    Over brain pixels of the lesion's slices of each case (the pixels the independence loss sees).
    """
    from .io import load_case
    from .model import hsic
    from .slices import case_volume, encoder_input, head_box, head_voxels

    cfg, net = bundle.config, bundle.net
    gen = torch.Generator().manual_seed(0)
    sums: dict[str, list[float]] = {}
    for case_dir in case_dirs:
        case = load_case(case_dir)
        volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
        zs = np.linspace(grid[2] * 0.3, grid[2] * 0.7, 6).astype(int).tolist()
        x = encoder_input(volume, zs, cfg.context, head_box(head_voxels(volume)[0]), net.size_multiple)
        with torch.inference_mode():
            f = net.features(x)
        brain = (x[:, :, cfg.context] != 0).any(1).reshape(-1)
        idx = torch.nonzero(brain).squeeze(1)
        idx = idx[torch.randperm(idx.numel(), generator=gen)[:pixels]]

        def flat(a):
            return a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])[idx].double()

        parts = {"F_c": flat(f.consensus), "F_u": flat(f.specific.flatten(1, 2)), "F_cf": flat(f.conflict)}
        for a, b in (("F_c", "F_u"), ("F_c", "F_cf"), ("F_u", "F_cf")):
            pa, pb = parts[a], parts[b]
            if pb.std() == 0 or pa.std() == 0:
                continue
            za = (pa - pa.mean(0)) / (pa.std(0) + 1e-8)
            zb = (pb - pb.mean(0)) / (pb.std(0) + 1e-8)
            corr = float(((za.T @ zb) / za.shape[0]).abs().mean())
            h = float(hsic(pa[:hsic_pixels].float(), pb[:hsic_pixels].float()))
            sums.setdefault(f"{a}~{b} corr", []).append(corr)
            sums.setdefault(f"{a}~{b} HSIC", []).append(h)
    return {k: float(np.mean(v)) for k, v in sums.items()}


# -- the whole run -------------------------------------------------------------------------------

def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def ratios_and_targets(rows: dict[str, dict]) -> dict:
    """The paper's claims as numbers, and whether this run meets the issue's targets."""
    out: dict = {"ratios": {}, "targets": {}}
    e = rows.get("entrust")
    if e is None:
        return out
    base = {k: rows[k] for k in UNET_BASELINES if k in rows}
    if base:
        best_key = min(base, key=lambda k: base[k].get("ece_roi", math.inf))
        best = base[best_key]
        out["ratios"]["ece_roi / best baseline"] = e["ece_roi"] / best["ece_roi"] if best["ece_roi"] else math.inf
        out["ratios"]["best baseline by ECE ROI"] = best_key
        out["targets"]["ECE ROI <= 0.6 x best baseline"] = out["ratios"]["ece_roi / best baseline"] <= 0.6
        for metric, better in (("conflict_auroc", max), ("ged", min)):
            others = [r[metric] for r in base.values() if _finite(r.get(metric))]
            if others and _finite(e.get(metric)):
                best_other = better(others)
                out["targets"][f"{metric} better than every baseline"] = \
                    e[metric] > best_other if better is max else e[metric] < best_other
    for key, label in (("ensemble", "held at once"), ("ensemble_sequential", "one at a time")):
        if key in rows:
            ens = rows[key]
            out["ratios"][f"memory / ensemble {label} (working)"] = e["working_memory_mb"] / ens["working_memory_mb"]
            out["ratios"][f"memory / ensemble {label} (peak RSS)"] = e["peak_rss_mb"] / ens["peak_rss_mb"]
            out["ratios"][f"time / ensemble {label}"] = e["mean_seconds"] / ens["mean_seconds"]
    if "ensemble" in rows:
        ens = rows["ensemble"]
        out["targets"]["Dice WT >= ensemble - 0.01"] = e["dice_WT"] >= ens["dice_WT"] - 0.01
        out["targets"]["peak memory <= 0.5 x ensemble held at once (working)"] = \
            out["ratios"]["memory / ensemble held at once (working)"] <= 0.5
        out["targets"]["time <= 1 x ensemble"] = out["ratios"]["time / ensemble held at once"] <= 1.0
    return out


def run_benchmark(work: Path, *, n_cases: int = 5, methods: list[Method] | None = None, samples: int = 8,
                  steps: int = 10, models_dir: Path, progress: Progress | None = None,
                  log: Callable[[str], None] | None = None) -> dict:
    """Everything but writing the report: returns the results dictionary."""
    from .checkpoint import load_checkpoint
    from .evaluation import evaluate

    methods = list(methods or METHODS)
    report = progress or (lambda f, m: None)
    say = log or (lambda m: None)
    case_dirs = make_cases(work / "cases", n_cases, progress=lambda f, m: report(0.05 * f, m))
    rows, runs, curves, per_case = {}, {}, {}, {}
    for i, method in enumerate(methods):
        report(0.05 + 0.85 * i / len(methods), f"{method.name}: predicting {n_cases} cases in a fresh process")
        run = run_in_fresh_process(method, case_dirs, work / "predictions" / method.key, models_dir, samples, steps)
        say(f"{method.name}: {run['mean_seconds']:.2f} s/case, peak RSS {run['peak_rss_mb']:.0f} MB")
        result = evaluate(work / "predictions" / method.key, work / "cases")
        runs[method.key] = run
        rows[method.key] = {"name": method.name, **result["aggregate"]["mean"],
                            "case_ranking": result["aggregate"]["case_score_vs_error_spearman"],
                            **{k: run[k] for k in ("mean_seconds", "peak_rss_mb", "working_memory_mb", "parameters",
                                                   "model_load_s")}}
        curves[method.key] = result["aggregate"]["curves"]
        per_case[method.key] = [{k: v for k, v in r.items() if k != "_curves"} for r in result["per_case"]]
    report(0.92, "dependence between F_c, F_u and F_cf")
    dependence = {}
    for key, file in (("entrust", None), ("entrust_hsic", "entrust_hsic.pt")):
        path = models_dir / file if file else None
        if path is None or path.exists():
            bundle = load_checkpoint(path)
            dependence[key] = {"independence": bundle.config.independence,
                               **feature_dependence(bundle, case_dirs)}
    report(1.0, "done")
    return {"cases": [c.name for c in case_dirs], "samples": samples, "steps": steps, "threads": torch.get_num_threads(),
            "methods": rows, "runs": runs, "per_case": per_case, "curves": curves, "dependence": dependence,
            **ratios_and_targets(rows), "machine": _machine()}


def _machine() -> dict:
    import platform

    return {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}


# -- report --------------------------------------------------------------------------------------

TABLE_COLUMNS = (
    ("dice_WT", "Dice WT", ".3f"), ("dice_TC", "Dice TC", ".3f"), ("dice_ET", "Dice ET", ".3f"),
    ("hd95_WT", "HD95 WT mm", ".1f"), ("ece", "ECE all", ".4f"), ("ece_roi", "ECE ROI", ".3f"),
    ("brier_roi", "Brier ROI", ".3f"), ("nll_roi", "NLL ROI", ".3f"), ("error_auroc", "error AUROC", ".3f"),
    ("ueo", "UEO", ".3f"), ("qu_brats", "QU-BraTS", ".3f"), ("ged", "GED ↓", ".3f"), ("hm_iou", "HM-IoU", ".3f"),
    ("conflict_auroc", "conflict AUROC", ".3f"), ("mean_seconds", "s / case", ".2f"),
    ("peak_rss_mb", "peak RSS MB", ".0f"), ("working_memory_mb", "working MB", ".0f"), ("parameters", "params", ","),
)


def _fmt(value, fmt: str) -> str:
    return format(value, fmt) if _finite(value) else "–"


def markdown_report(results: dict) -> str:
    lines = [f"Held-out phantoms {', '.join(results['cases'])} (2 mm); EnTrust K = {results['samples']}, "
             f"S = {results['steps']}; {results['threads']} CPU threads; each method in a fresh process; "
             f"{results['machine']['date']}.", "",
             "| method | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |",
             "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for row in results["methods"].values():
        lines.append(f"| {row['name']} | " + " | ".join(_fmt(row.get(k), f) for k, _, f in TABLE_COLUMNS) + " |")
    ranked = {row["name"]: row.get("case_ranking") for row in results["methods"].values()
              if _finite(row.get("case_ranking"))}
    if ranked:
        lines += ["", "Case score vs 1 − Dice WT over the cases (Spearman; the worklist's ordering): "
                  + ", ".join(f"{name} {_fmt(v, '.2f')}" for name, v in ranked.items())]
    lines += ["", "Ratios (EnTrust over the baseline):", ""]
    for k, v in results["ratios"].items():
        lines.append(f"- {k}: {_fmt(v, '.2f') if not isinstance(v, str) else v}")
    lines += ["", "Targets:", ""]
    for k, ok in results["targets"].items():
        lines.append(f"- {k}: {'met' if ok else 'MISSED'}")
    if results["dependence"]:
        keys = list(next(iter(results["dependence"].values())))
        lines += ["", "Dependence left between the decomposed features (mean |corr| of channel pairs, HSIC):", "",
                  "| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for name, d in results["dependence"].items():
            lines.append(f"| {name} | " + " | ".join(str(d[k]) if isinstance(d[k], str) else _fmt(d[k], ".4f")
                                                     for k in keys) + " |")
    return "\n".join(lines) + "\n"


def report_files(out: Path) -> dict[str, Path]:
    return {"markdown": out / "benchmark.md", "json": out / "benchmark.json",
            "reliability": out / "reliability.png", "uncertainty_error": out / "uncertainty_error.png"}


def write_report(results: dict, out: Path, *, overwrite: bool = False) -> dict[str, Path]:
    from .evaluation import write_json
    from .nifti import atomic_write, check_writable
    from .plots import reliability_diagram, uncertainty_error_plot

    files = report_files(out)
    check_writable(list(files.values()), overwrite)
    text = markdown_report(results)
    atomic_write(files["markdown"], lambda tmp: tmp.write_text(text), overwrite=overwrite)
    write_json(files["json"], results, overwrite)
    names = {k: r["name"] for k, r in results["methods"].items()}
    reliability_diagram({names[k]: c.get("reliability_roi") for k, c in results["curves"].items()},
                        files["reliability"], overwrite=overwrite)
    uncertainty_error_plot({names[k]: c.get("uncertainty_error_roi") for k, c in results["curves"].items()},
                           files["uncertainty_error"], overwrite=overwrite)
    return files


def _child_main(argv: list[str] | None = None) -> int:
    """``python -m napari_entrust.benchmark METHOD --out DIR --models DIR CASE...`` (one fresh process)."""
    from .benchmark_models import METHOD_KEYS

    p = argparse.ArgumentParser(prog="python -m napari_entrust.benchmark")
    p.add_argument("method", choices=METHOD_KEYS)
    p.add_argument("cases", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", type=Path, required=True)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    method = next(m for m in METHODS if m.key == args.method)
    run_method(method, args.cases, args.out, args.models, args.samples, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
