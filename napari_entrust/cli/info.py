"""``entrust info CASE``: list modalities, geometry, intensities and input checks of a case.

Load a case the way the model would and report what was found and checked. Exit status 0 when
every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..io.labels import LABEL_NAMES
from .arguments import add_case_arguments, case_source, command_texts, load_kwargs


def add_parser(sub) -> None:
    """The command's options."""
    p = sub.add_parser("info", **command_texts(__doc__))
    add_case_arguments(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns its exit status."""
    from ..io.loader import inspect_case

    source = case_source(args)
    case, checks = inspect_case(source, **load_kwargs(args))
    report = {
        "case": case.name if case else str(source),
        "ok": case is not None,
        "checks": [{"subject": c.subject, "check": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
    }
    if case is not None:
        report.update(
            {
                "layout": case.layout,
                "reference": str(case.grid.path),
                "grid": {"shape_ras": list(case.shape), "spacing_mm": [round(float(v), 4) for v in case.spacing]},
                "modalities": {
                    m: {
                        **case.file_geometry[m],
                        "min": float(case.images[m].min()),
                        "p99": float(np.percentile(case.images[m], 99)),
                        "max": float(case.images[m].max()),
                    }
                    for m in case.modalities
                },
                "notes": case.notes,
            }
        )
        if case.labels is not None:
            counts = np.bincount(case.labels.ravel(), minlength=5)
            report["labels"] = {
                **case.file_geometry["labels"],
                "convention": case.label_convention,
                "volumes_ml": {
                    LABEL_NAMES[v]: round(float(counts[v]) * case.grid.voxel_volume_ml, 3) for v in LABEL_NAMES if v
                },
            }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0 if report["ok"] else 1


def _print_report(r: dict) -> None:
    print(f"case       {r['case']}" + (f"  (layout {r['layout']})" if "layout" in r else ""))
    if "modalities" in r:
        g = r["grid"]
        print(
            f"reference  {r['reference']}  grid {'x'.join(map(str, g['shape_ras']))} (RAS+), "
            f"spacing {' x '.join(f'{v:g}' for v in g['spacing_mm'])} mm"
        )
        print(
            f"\n{'modality':9s} {'shape':14s} {'spacing (mm)':20s} {'orient':7s} {'q/s code':9s} "
            f"{'intensity min .. p99 .. max':30s} file"
        )
        for m, d in r["modalities"].items():
            print(
                f"{m:9s} {'x'.join(map(str, d['shape'])):14s} {' x '.join(f'{v:g}' for v in d['spacing_mm']):20s} "
                f"{d['orientation'] + ('*' if d['oblique'] else ''):7s} {d['qform_code']}/{d['sform_code']:<7d} "
                f"{d['min']:8.4g} .. {d['p99']:8.4g} .. {d['max']:8.4g}   {d['path']}"
            )
        if "labels" in r:
            lab = r["labels"]
            vols = ", ".join(f"{k} {v:g} mL" for k, v in lab["volumes_ml"].items())
            print(f"\nlabels     {lab['path']} ({lab['convention']}): {vols}")
    print("\nchecks")
    for c in r["checks"]:
        print(
            f"  [{'ok' if c['ok'] else 'FAIL':4s}] {c['subject']}: {c['check']}"
            + (f" - {c['detail']}" if c["detail"] else "")
        )
    for note in r.get("notes", []):
        print(f"note: {note}")
    print("\nall checks passed" if r["ok"] else "\nSOME CHECKS FAILED: the case cannot be used as it is")
