"""A folder of cases -> one prediction per case -> a worklist CSV with the riskiest cases first.

Order of the worklist: cases that could not be processed, then inputs flagged as unlike the
training data (lowest validity first; their masks are the least trustworthy), then every other case
by its case uncertainty score (highest first). When a case carries labels, its row also holds the
Dice of the mask, and :func:`score_error_correlation` says how well the case score ranks the
actual error (Spearman between score and 1 − Dice). Cases are sharded over ``torchrun`` ranks by
:func:`predict_cases`; the CLI gathers the rows on rank 0.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import EntrustError, InputError, exception_reason
from ..evaluation.metrics import case_ranking, dice
from ..inference.engine import run_prediction
from ..io.case_files import find_case_files, is_msd_image
from ..io.files import nifti_suffix, strip_nifti_suffix, write_text
from ..io.labels import REGIONS, to_regions
from ..io.loader import load_case
from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig
from ..outputs.prediction_folder import write_prediction
from ..progress import Steps, rescaled

WORKLIST_FILE = "worklist.csv"
COLUMNS = (
    "priority",
    "case",
    "status",
    "case_score",
    "wt_volume_cv",
    "validity",
    "flagged",
    "reasons",
    "WT_ml",
    "WT_ml_std",
    "TC_ml",
    "ET_ml",
    "dice_WT",
    "dice_TC",
    "dice_ET",
    "seconds",
    "output",
    "source",
    "error",
)
MIN_CASES_FOR_SPEARMAN = 3

log = logging.getLogger(__name__)


def find_cases(folder: str | Path) -> list[Path]:
    """The cases inside ``folder``: BraTS case sub-folders and MSD 4-D NIfTI files, sorted by name.

    Raises :class:`InputError` when ``folder`` is itself one case (use it directly) or holds none.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder of cases")
    try:
        find_case_files(folder)
    except InputError:
        pass
    else:
        raise InputError(folder, "is one case, not a folder of cases")
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            try:
                find_case_files(entry)
            except InputError:
                continue
            found.append(entry)
        elif nifti_suffix(entry) and is_msd_image(entry):
            found.append(entry)
    if not found:
        raise InputError(folder, "holds no case: expected BraTS case sub-folders or MSD 4-D NIfTI files")
    return found


def is_case_collection(path: str | Path) -> bool:
    """True for a folder of cases (not a single case folder)."""
    try:
        find_cases(path)
    except InputError:
        return False
    return True


def output_name(source: Path) -> str:
    """The sub-folder a case's outputs go to: its folder or file name, so ``entrust evaluate`` can pair them."""
    return strip_nifti_suffix(source) if nifti_suffix(source) else source.name


def _row(source: Path, output: Path) -> dict:
    """Paths are absolute, so the worklist can be opened from anywhere (e.g. the napari widget)."""
    return {c: "" for c in COLUMNS} | {
        "case": output_name(source),
        "source": str(Path(source).resolve()),
        "output": str(Path(output).resolve()),
    }


def case_row(summary: dict, source: Path, output: Path, seconds: float, dice_scores: dict | None = None) -> dict:
    """One processed case as a worklist row (numbers as numbers; empty strings where unknown)."""
    validity = summary.get("validity", {})
    volumes = summary["volumes_ml"]
    row = _row(source, output) | {
        "status": "ok",
        "case_score": summary["case_score"]["score"],
        "wt_volume_cv": summary["case_score"]["wt_volume_cv"],
        "validity": validity.get("score", ""),
        "flagged": bool(validity.get("flagged", False)),
        "reasons": "; ".join(validity.get("reasons", [])),
        "WT_ml": volumes["WT"]["mask"],
        "WT_ml_std": volumes["WT"]["std"],
        "TC_ml": volumes["TC"]["mask"],
        "ET_ml": volumes["ET"]["mask"],
        "seconds": round(seconds, 2),
    }
    for region, value in (dice_scores or {}).items():
        row[f"dice_{region}"] = value
    return row


def error_row(source: Path, output: Path, message: str) -> dict:
    """A case that could not be processed, as a worklist row."""
    return _row(source, output) | {"status": "error", "error": message}


def sort_rows(rows: list[dict]) -> list[dict]:
    """Riskiest first (see the module docstring); sets ``priority`` 1, 2, …"""

    def key(row: dict):
        if row["status"] != "ok":
            return (0, 0.0, row["case"])
        if _truthy(row["flagged"]):
            return (1, _number(row["validity"], 0.0), row["case"])
        return (2, -_number(row["case_score"], 0.0), row["case"])

    ordered = sorted(rows, key=key)
    for i, row in enumerate(ordered, start=1):
        row["priority"] = i
    return ordered


def _number(value, default: float = math.nan) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _truthy(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def score_error_correlation(rows: list[dict]) -> dict | None:
    """Spearman ρ between case score and 1 − Dice (WT, and the mean over WT/TC/ET) over labelled cases.

    None with fewer than :data:`MIN_CASES_FOR_SPEARMAN` labelled cases.
    """
    usable = [r for r in rows if r["status"] == "ok" and math.isfinite(_number(r["dice_WT"]))]
    if len(usable) < MIN_CASES_FOR_SPEARMAN:
        return None
    score = [_number(r["case_score"]) for r in usable]
    mean_dice = [float(np.mean([_number(r[f"dice_{g}"]) for g in REGIONS])) for r in usable]
    return {
        "cases": len(usable),
        "spearman_WT": case_ranking(score, [_number(r["dice_WT"]) for r in usable]),
        "spearman_mean_dice": case_ranking(score, mean_dice),
    }


def write_worklist(rows: list[dict], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the rows (already sorted) as CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return write_text(path, buffer.getvalue(), overwrite=overwrite)


def read_worklist(path: str | Path) -> list[dict]:
    """The rows of a worklist CSV in file order; an unreadable file or a missing column names the file."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("case", "status", "source", "output") if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(path, f"is not an EnTrust worklist: no column {', '.join(missing)}")
            return list(reader)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(path, f"is not a readable CSV file ({exc})") from None


def next_case(rows: list[dict], current: str | None) -> dict | None:
    """The first processed case after ``current`` in worklist order (the first one if ``current`` is None or
    not listed); None when the list is done."""
    ok = [r for r in rows if r["status"] == "ok"]
    names = [r["case"] for r in ok]
    start = names.index(current) + 1 if current in names else 0
    return ok[start] if start < len(ok) else None


def predict_cases(
    sources: list[Path],
    bundle: ModelBundle,
    sampling: SamplingConfig,
    out_dir: Path,
    *,
    rank: int = 0,
    world: int = 1,
    overwrite: bool = False,
    label_convention: str = "brats2021",
    memory_mb: float = 1024,
    load_kwargs: dict | None = None,
    on_unexpected: Callable[[BaseException, str], object] | None = None,
) -> Steps[list[dict]]:
    """Predict this rank's share of ``sources`` (every ``world``-th case from ``rank``); one row per case.

    A case that fails, for any reason, becomes an ``error`` row naming the stage, and the batch goes
    on; an error that is not an input check is also passed to ``on_unexpected(exc, where)`` (the
    CLI writes its traceback to a log and returns the log's path, named in the row). Each case's
    outputs go to ``out_dir/<case>/`` exactly as ``entrust predict`` writes them, whole or not at
    all. Each finished case is logged as one line.
    """
    mine = sources[rank::world]
    rows = []
    for i, source in enumerate(mine):
        output = out_dir / output_name(source)
        t = time.perf_counter()
        stage = "loading"
        try:
            case = load_case(source, **(load_kwargs or {}))
            stage = "predicting"
            pred = yield from rescaled(
                run_prediction(case, bundle, sampling, memory_mb=memory_mb),
                i / len(mine),
                1 / len(mine),
                f"{output.name} ({i + 1}/{len(mine)}): ",
            )
            stage = "writing the outputs"
            write_prediction(case, pred, output, overwrite=overwrite, label_convention=label_convention)
            scores = dice(to_regions(pred.mask), case.regions()) if case.labels is not None else None
            row = case_row(pred.summary, source, output, time.perf_counter() - t, scores)
        except EntrustError as exc:
            row = error_row(source, output, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
            where = f"{stage} {output.name}"
            trace = on_unexpected(exc, where) if on_unexpected else None
            row = error_row(
                source,
                output,
                f"unexpected error while {stage} ({exception_reason(exc)})" + (f"; see {trace}" if trace else ""),
            )
        rows.append(row)
        log.info(describe_row(row))
    yield 1.0, "done"
    return rows


def describe_row(row: dict) -> str:
    """One line per case, as the CLI prints it."""
    if row["status"] != "ok":
        return f"{row['case']}: FAILED - {row['error']}"
    text = f"{row['case']}: case score {_number(row['case_score']):.3f}, WT {_number(row['WT_ml']):.1f} mL"
    if math.isfinite(_number(row["dice_WT"])):
        text += f", Dice WT {_number(row['dice_WT']):.3f}"
    if _truthy(row["flagged"]):
        text += f"; input flagged (validity {_number(row['validity']):.2f}): {row['reasons']}"
    return text
