"""``entrust train --out CKPT``: train a model on phantoms and/or labelled case folders.

Train EnFuse + SegDiff, then the calibration head (backbone frozen). Runs alone or under
``torchrun --nproc_per_node N -m napari_entrust.cli train ...`` (DDP).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from ..errors import EntrustError, exception_reason
from ..inference.device import DEVICE_CHOICES
from ..model.config import FINE_TUNABLE, ModelConfig
from ..phantom.domain import DOMAINS
from ..training.train_config import TrainConfig
from .arguments import SEED_LIMIT, add_overwrite_argument, chosen, command_texts, int_at_least, progress_bar


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("train", **command_texts(__doc__))
    p.add_argument("--out", "-o", required=True, type=Path, metavar="CKPT", help="checkpoint file to write (.pt)")
    p.add_argument("--phantoms", type=int_at_least(0), default=40, help="phantom training cases (default 40)")
    p.add_argument(
        "--calibration-phantoms", type=int_at_least(0), default=8, help="phantom calibration cases (default 8)"
    )
    p.add_argument("--cases", nargs="*", default=[], type=Path, help="labelled case folders / MSD images to train on")
    p.add_argument("--calibration-cases", nargs="*", default=[], type=Path, help="labelled cases for calibration")
    p.add_argument("--iterations", type=int_at_least(1), default=TrainConfig.iterations)
    p.add_argument("--batch-size", type=int_at_least(1), default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--seed", type=int_at_least(0, SEED_LIMIT), default=0, help="random seed in [0, 2^32) (default 0)")
    p.add_argument("--calibration-iterations", type=int_at_least(1), default=TrainConfig.calibration_iterations)
    p.add_argument("--calibration-slices", type=int_at_least(4), default=TrainConfig.calibration_slices)
    p.add_argument("--init", type=Path, metavar="CKPT", help="start from this checkpoint (fine-tune on a new site)")
    p.add_argument(
        "--calibrate-only",
        action="store_true",
        help="with --init: keep its backbone; refit the calibration head on the calibration cases "
        "(and the input statistics on the training cases)",
    )
    p.add_argument(
        "--config",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model config overrides, e.g. conflict_branch=false independence=hsic",
    )
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument(
        "--cache",
        type=Path,
        help="folder to keep prepared training cases in (phantoms and --cases); they are then read"
        " lazily, crop by crop, so hundreds of cases train in flat memory",
    )
    p.add_argument(
        "--workers",
        type=int_at_least(0),
        default=0,
        help="DataLoader processes cutting training crops while the model trains (default 0: in the training process)",
    )
    p.add_argument(
        "--domain",
        choices=DOMAINS,
        default="standard",
        help="phantoms of the sample's one protocol (standard), or a new scanner, protocol and lesion"
        " family per case (randomised: generalises beyond the phantom)",
    )
    p.add_argument("--threads", type=int_at_least(1), help="CPU threads per process (default: torch's choice)")
    add_overwrite_argument(p)
    p.set_defaults(run=run)


def _parse_overrides(items: list[str], base: ModelConfig) -> ModelConfig:
    types = {f.name: f.type for f in dataclasses.fields(ModelConfig)}
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in types:
            raise EntrustError(f"--config expects KEY=VALUE with KEY one of {', '.join(types)}; got {item!r}")
        current = getattr(base, key)
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise EntrustError(f"--config {key} expects true or false, got {text!r}")
            values[key] = text.lower() in ("true", "1", "yes")
            continue
        try:
            if isinstance(current, tuple):
                values[key] = tuple(type(current[0])(v) if current else v for v in text.split(","))
            else:
                values[key] = type(current)(text)
        except ValueError:
            raise EntrustError(f"--config {key} expects a value like {current!r}, got {text!r}") from None
    cfg = dataclasses.replace(base, **values)
    from ..model.entrust_net import EnTrustNet

    try:  # refuse now, not after the data are prepared: a network these values cannot build
        EnTrustNet(cfg)
    except Exception as exc:  # noqa: BLE001 - MONAI and torch raise many kinds
        shown = " ".join(items)
        raise EntrustError(f"--config {shown}: these values cannot build a network ({exception_reason(exc)})") from None
    return cfg


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    import torch

    from ..inference.device import resolve_device
    from ..inference.distributed import finish
    from ..io.files import check_writable
    from ..model.checkpoint import load_checkpoint, save_checkpoint
    from ..model.checkpoint_file import record_sha256
    from ..progress import run_to_end
    from ..training.pipeline import checkpoint_statistics, train

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    init, previous = None, None
    base = ModelConfig()
    if args.calibrate_only and not args.init:
        raise EntrustError("--calibrate-only refits the calibration head of an existing model: give --init CKPT")
    if args.init:
        bundle = load_checkpoint(args.init)
        base = bundle.config
        init = {"net": bundle.net.state_dict(), "calibration": bundle.calibration.state_dict()}
        previous = bundle
    cfg = _parse_overrides(args.config, base)
    if init is not None and cfg.differs_in_architecture(base):
        raise EntrustError(
            f"--config cannot change the architecture of an --init checkpoint (only {', '.join(FINE_TUNABLE)})"
        )
    check_writable([args.out], args.overwrite)
    if args.phantoms + len(args.cases) == 0:
        raise EntrustError("nothing to train on: give --phantoms N and/or --cases")
    train_cases, calib_cases = _training_cases(args, cfg)
    if not calib_cases:
        raise EntrustError("the calibration head needs held-out cases: --calibration-phantoms N or --calibration-cases")
    names = ("iterations", "batch_size", "lr", "seed", "calibration_iterations", "calibration_slices", "workers")
    tc = TrainConfig(**chosen(args, *names))
    bar = progress_bar("training")
    started = time.time()
    try:
        net, head, record, ctx = run_to_end(
            train(cfg, tc, train_cases, calib_cases, device=device, init=init, backbone=not args.calibrate_only), bar
        )
    finally:
        bar.close()
    record.update(
        {
            "command": " ".join(["entrust", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else None,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
            "init": str(args.init) if args.init else None,
            "threads": torch.get_num_threads(),
            "phantom_domain": args.domain,
        }
    )
    if args.calibrate_only:  # the backbone's own record (its command, data and time) stays with it
        record["backbone_training"] = previous.training.get("backbone_training", previous.training)
    if ctx.main:
        bar = progress_bar("input statistics")
        try:
            statistics = run_to_end(checkpoint_statistics(net, train_cases, calib_cases), bar)
        finally:
            bar.close()
        digest = save_checkpoint(args.out, net, head, training=record, overwrite=args.overwrite, **statistics)
        if (args.out.parent / "SHA256SUMS").exists():  # a folder whose checksums are checked on load
            record_sha256(args.out, digest)
        print(f"wrote {args.out} (sha256 {digest}) after {record['total_seconds']} s")
    finish(ctx)
    return 0


def _training_cases(args: argparse.Namespace, cfg: ModelConfig) -> tuple[list, list]:
    """The training and calibration cases: phantoms (made or read from ``--cache``) and labelled folders."""
    from ..progress import run_to_end
    from ..training.cases import CALIBRATION_SEED0, TRAIN_SEED0, folder_cases, generate_phantom_cases

    bar = progress_bar("preparing data")
    try:
        train_cases = run_to_end(
            generate_phantom_cases(
                range(TRAIN_SEED0, TRAIN_SEED0 + args.phantoms),
                model_spacing=cfg.spacing_mm,
                cache_dir=args.cache,
                domain=args.domain,
            ),
            bar,
        ) + folder_cases(args.cases, cfg.spacing_mm, args.cache)
        calib_cases = run_to_end(
            generate_phantom_cases(
                range(CALIBRATION_SEED0, CALIBRATION_SEED0 + args.calibration_phantoms),
                model_spacing=cfg.spacing_mm,
                cache_dir=args.cache,
                domain=args.domain,
            ),
            bar,
        ) + folder_cases(args.calibration_cases, cfg.spacing_mm, args.cache)
    finally:
        bar.close()
    return train_cases, calib_cases
