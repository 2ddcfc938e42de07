"""``entrust benchmark``: EnTrust, its ablations and the UNet baselines on held-out phantoms.

The path: N phantom cases with seeds never trained on (9000 and up) are written to disk; every
method then runs in a fresh Python process (:mod:`.method_process`) that loads its models, predicts
each case and writes the same files as ``entrust predict``, measuring wall time per case and the
peak resident memory of that process alone; finally each method's folder is scored by
:mod:`napari_entrust.evaluation` and the table, the paper's ratios (:mod:`.report`), the dependence
left between F_c, F_u and F_cf (:mod:`.dependence`), JSON and plots are written.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from ..evaluation.evaluate import evaluate
from ..model.checkpoint import load_checkpoint
from ..phantom.phantom import GENERATOR_VERSION, make_phantom
from ..phantom.writing import save_phantom
from ..progress import Steps, rescaled
from ..training.cases import HELD_OUT_SEED0
from .dependence import feature_dependence
from .method_process import run_in_fresh_process
from .methods import METHODS, Method
from .report import ratios_and_targets

log = logging.getLogger(__name__)
#: what the table takes from each method's own process (:func:`.method_process.run_method`)
RUN_FIELDS = ("mean_seconds", "peak_rss_mb", "working_memory_mb", "tensor_memory_mb", "parameters", "model_load_s")


def make_cases(folder: Path, n: int, spacing: int = 2) -> Steps[list[Path]]:
    """Write phantom cases 9000 … 9000 + n − 1 (reused when already there from an earlier run)."""
    out = []
    for i in range(n):
        seed = HELD_OUT_SEED0 + i
        case_dir = folder / f"phantom-{seed:05d}"
        meta = case_dir / "truth" / "phantom.json"
        yield i / n, f"held-out phantom {seed}"
        if meta.exists():
            m = json.loads(meta.read_text())
            if (
                m.get("seed") == seed
                and m.get("generator_version") == GENERATOR_VERSION
                and m.get("spacing_mm") == spacing
            ):
                out.append(case_dir)
                continue
        save_phantom(make_phantom(seed=seed, spacing=spacing), case_dir, overwrite=True)
        out.append(case_dir)
    return out


def run_benchmark(
    work: Path,
    *,
    n_cases: int = 5,
    methods: list[Method] | None = None,
    samples: int = 8,
    steps: int = 10,
    models_dir: Path,
) -> Steps[dict]:
    """Everything but writing the report; yields progress, returns the results dictionary."""
    methods = list(methods or METHODS)
    case_dirs = yield from rescaled(make_cases(work / "cases", n_cases), 0.0, 0.05)
    rows, runs, curves, per_case = {}, {}, {}, {}
    for i, method in enumerate(methods):
        yield 0.05 + 0.85 * i / len(methods), f"{method.name}: predicting {n_cases} cases in a fresh process"
        run = run_in_fresh_process(method, case_dirs, work / "predictions" / method.key, models_dir, samples, steps)
        log.info(f"{method.name}: {run['mean_seconds']:.2f} s/case, peak RSS {run['peak_rss_mb']:.0f} MB")
        result = evaluate(work / "predictions" / method.key, work / "cases")
        runs[method.key] = run
        rows[method.key] = {
            "name": method.name,
            **result["aggregate"]["mean"],
            "case_ranking": result["aggregate"]["case_score_vs_error_spearman"],
            **{k: run[k] for k in RUN_FIELDS},
        }
        curves[method.key] = result["aggregate"]["curves"]
        per_case[method.key] = [{k: v for k, v in r.items() if k != "_curves"} for r in result["per_case"]]
    yield 0.92, "dependence between F_c, F_u and F_cf"
    dependence = {}
    for key, file in (("entrust", None), ("entrust_hsic", "entrust_hsic.pt")):
        path = models_dir / file if file else None
        if path is None or path.exists():
            bundle = load_checkpoint(path)
            dependence[key] = {"independence": bundle.config.independence, **feature_dependence(bundle, case_dirs)}
    yield 1.0, "done"
    return {
        "cases": [c.name for c in case_dirs],
        "samples": samples,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "methods": rows,
        "runs": runs,
        "per_case": per_case,
        "curves": curves,
        "dependence": dependence,
        **ratios_and_targets(rows),
        "machine": _machine(),
    }


def _machine() -> dict:
    import platform

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
