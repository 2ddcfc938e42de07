"""``entrust predict CASE --out DIR``: segment a case and write the mask, hypotheses and TrustMap."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..config import SamplingConfig
from ..device import DEVICE_CHOICES, resolve_device
from ..engine import predict_case
from ..errors import EntrustError
from ..io import load_case
from ..nifti import check_writable
from ..outputs import output_files, write_prediction
from ..validity import describe as describe_validity
from ._args import add_case_arguments, add_overwrite_argument, case_source, int_at_least, load_kwargs, progress_bar


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="segment a case: mask, K hypotheses, TrustMap and explanation maps",
                       description="Run EnTrust on a case and write NIfTI outputs on the reference input's grid "
                                   "plus summary.json.")
    add_case_arguments(p)
    p.add_argument("--out", "-o", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--samples", "-k", type=int_at_least(1), default=8, help="hypotheses K (default 8)")
    p.add_argument("--steps", "-s", type=int_at_least(1), default=10, help="DDIM steps S (default 10)")
    p.add_argument("--probe-strength", type=_fraction, default=0.2, metavar="EPS",
                   help="conflict probe strength ε in [0, 1): F_cf scaled by 1 ± ε (default 0.2)")
    p.add_argument("--eta", type=float, default=1.0, help="DDIM stochasticity η in [0, 1] (default 1)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="auto (cuda, mps, cpu) or one of them")
    p.add_argument("--model", type=Path, metavar="CKPT", help="checkpoint (default: the bundled model)")
    p.add_argument("--memory-mb", type=int_at_least(64), default=1024, help="working-memory budget (default 1024)")
    p.add_argument("--label-values", choices=("brats2021", "brats2023"), default="brats2021",
                   help="label values of the written masks (default brats2021: ET = 4)")
    add_overwrite_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sampling = SamplingConfig(samples=args.samples, steps=args.steps, eta=args.eta,
                              probe_strength=args.probe_strength, seed=args.seed,
                              probe_steps=min(2, args.steps - 1) if args.steps > 1 else 0)
    try:
        sampling.validate()
    except ValueError as exc:
        raise EntrustError(str(exc)) from None
    case = load_case(case_source(args), **load_kwargs(args))
    device = resolve_device(args.device)
    bundle = load_checkpoint(args.model, device)
    check_writable(list(output_files(bundle.config.modalities, args.out).values()), args.overwrite)
    bar = progress_bar(f"EnTrust {case.name}")
    try:
        pred = predict_case(case, bundle, sampling, progress=bar, memory_mb=args.memory_mb)
    finally:
        bar.close()
    files = write_prediction(case, pred, args.out, overwrite=args.overwrite, label_convention=args.label_values)
    s = pred.summary
    vol = s["volumes_ml"]
    print(f"{case.name}: case score {s['case_score']['score']:.3f}  "
          + "  ".join(f"{r} {v['mask']:.1f} mL (hypotheses {v['mean']:.1f} ± {v['std']:.1f})" for r, v in vol.items()))
    print(f"  {s['timings_s']['total_s']:.1f} s on {s['device']}; {len(files)} files in {args.out}")
    print(describe_validity(s["validity"]), file=sys.stderr if s["validity"]["flagged"] else sys.stdout)
    print(json.dumps(s["timings_s"]))
    return 0
