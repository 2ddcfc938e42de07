"""``entrust benchmark``: EnTrust vs UNet / MC dropout / 5x ensemble and ablations on held-out phantoms.

Generate held-out phantom cases (seeds 9000+), run EnTrust, its ablations and the UNet baselines
each in a fresh process, evaluate them and write one table (markdown + JSON + plots).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from ..benchmark.methods import METHOD_KEYS, METHODS, baselines_dir, missing_models
from ..errors import EntrustError
from ..io.output_folder import check_output_folder, top_names
from .arguments import add_overwrite_argument, command_texts, int_at_least, progress_bar

#: measured on the 2-core development CPU, one thread per training (see the README)
TRAINING_MINUTES = {"unet": 7, "entrust": 30}


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("benchmark", **command_texts(__doc__))
    p.add_argument("--cases", "-n", type=int_at_least(1), default=5, help="held-out phantom cases (default 5)")
    p.add_argument(
        "--out",
        "-o",
        type=Path,
        default=Path("benchmarks/results"),
        metavar="DIR",
        help="where benchmark.md/.json and the plots go (default benchmarks/results)",
    )
    p.add_argument(
        "--work",
        type=Path,
        metavar="DIR",
        help="keep the cases and every method's predictions here (default: a temporary folder)",
    )
    p.add_argument(
        "--methods",
        default=",".join(METHOD_KEYS),
        help=f"comma-separated subset of {', '.join(METHOD_KEYS)} (default all)",
    )
    p.add_argument("--samples", "-k", type=int_at_least(1), default=8, help="EnTrust hypotheses K (default 8)")
    p.add_argument("--steps", "-s", type=int_at_least(1), default=10, help="EnTrust DDIM steps S (default 10)")
    p.add_argument(
        "--models", type=Path, metavar="DIR", help="baseline/ablation weights (default: bundled resources/baselines)"
    )
    p.add_argument(
        "--train-baselines",
        action="store_true",
        help="first train the baseline/ablation models missing from --models, like the bundled model "
        "(same phantoms, augmentation and iterations)",
    )
    p.add_argument("--iterations", type=int_at_least(1), default=4000, help="training iterations (default 4000)")
    p.add_argument("--phantoms", type=int_at_least(1), default=40, help="training phantoms (default 40)")
    p.add_argument("--cache", type=Path, help="folder to cache generated training phantoms in")
    add_overwrite_argument(p)
    p.set_defaults(run=run)


def _methods(text: str):
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in METHOD_KEYS]
    if unknown or not keys:
        raise EntrustError(
            f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHOD_KEYS)}"
        )
    return [m for m in METHODS if m.key in keys]


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    import torch

    from ..benchmark.report import report_files, write_report
    from ..benchmark.run import run_benchmark
    from ..progress import run_to_end

    methods = _methods(args.methods)
    models = args.models or baselines_dir()
    check_output_folder(args.out, args.overwrite, top_names(args.out, report_files(args.out).values()), shared=True)
    todo = missing_models(models, methods)
    if todo and not args.train_baselines:
        minutes = sum(TRAINING_MINUTES[t.family] for t in todo)
        raise EntrustError(
            f"{models}: missing {', '.join(t.file for t in todo)}; pass --train-baselines to train "
            f"them (about {minutes} min on a 2-core CPU) or choose --methods without them"
        )
    if todo:
        _train_missing(todo, models, args)
    work = args.work or Path(tempfile.mkdtemp(prefix="entrust-benchmark-"))
    bar = progress_bar("benchmark")
    try:
        results = run_to_end(
            run_benchmark(
                work, n_cases=args.cases, methods=methods, samples=args.samples, steps=args.steps, models_dir=models
            ),
            bar,
        )
    finally:
        bar.close()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    files = write_report(results, args.out, overwrite=args.overwrite)
    print(files["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in files.values())} ({torch.get_num_threads()} threads)")
    return 0


def _train_missing(todo, models: Path, args: argparse.Namespace) -> None:
    """Train the baseline and ablation models the chosen methods need and ``models`` lacks."""
    from ..benchmark.method_training import train_models
    from ..inference.device import resolve_device
    from ..progress import run_to_end

    bar = progress_bar("training baselines")
    try:
        run_to_end(
            train_models(
                todo,
                models,
                phantoms=args.phantoms,
                iterations=args.iterations,
                cache=args.cache,
                device=resolve_device("auto"),
            ),
            bar,
        )
    finally:
        bar.close()
