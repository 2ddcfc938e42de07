"""What a napari user waits for: a 1 mm case run to its layers, re-sampling with an edit, explaining a region.

    xvfb-run -a python benchmarks/napari_speed_benchmark.py [--repeats 2] [--out DIR]

Each action is started as the button would start it and timed until its result is on screen
(the status line says so), in a real viewer; a 10 ms timer in the GUI thread records the longest
time the GUI did not answer during each action. Targets (issue 19): a 1 mm case (the independent
held-out generator: 240 × 240 × 155, LPS) run to its layers ≤ 8 s; "Re-sample with my edits" on
the 2 mm sample ≤ 2 s; "Explain selected region" (the most uncertain region) ≤ 10 s; the GUI never
blocked for more than 100 ms. Medians over ``--repeats``, with min–max. The widgets' defaults
(K = 8, S = 10) throughout. Writes ``napari_speed.{json,md}`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from case_speed_benchmark import benchmark_case, spread, write_results  # a sibling script: its folder is on sys.path

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"run a 1 mm case": 8.0, "re-sample with an edit (2 mm)": 2.0, "explain a region (2 mm)": 10.0}
GUI_GAP_S = 0.100


class Heartbeat:
    """A 10 ms timer in the GUI thread; the longest gap between its beats is how long the GUI froze."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.beats: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.beats.append(time.perf_counter()))

    def __enter__(self):
        self.beats = [time.perf_counter()]
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()

    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.beats, self.beats[1:])), default=0.0)


def wait_for(condition, timeout: float = 600.0) -> float:
    """Run Qt's own event loop until ``condition()`` (checked every 5 ms); the seconds it took. The
    loop waits natively between events, as napari's does, so the worker thread is not starved of
    the GIL by polling from Python."""
    from qtpy.QtCore import QEventLoop, QTimer

    started = time.perf_counter()
    loop, check = QEventLoop(), QTimer()
    check.setInterval(5)

    def poll() -> None:
        if condition() or time.perf_counter() - started > timeout:
            loop.quit()

    check.timeout.connect(poll)
    check.start()
    if not condition():
        loop.exec_()
    check.stop()
    if not condition():
        raise TimeoutError("the action did not finish")
    return time.perf_counter() - started


def timed(start, done) -> tuple[float, float]:
    """Seconds from ``start()`` until ``done()``, and the GUI's longest freeze meanwhile."""
    with Heartbeat() as beat:
        started = time.perf_counter()
        start()
        wait_for(done)
        seconds = time.perf_counter() - started
    return seconds, beat.longest_gap()


def widgets(viewer):
    _, run = viewer.window.add_plugin_dock_widget("napari-entrust", "EnTrust")
    _, review = viewer.window.add_plugin_dock_widget("napari-entrust", "Review uncertainty")
    return run, review


def run_done(run) -> bool:
    return run._status.text().startswith(("done:", "EnTrust", "cancelled"))


def one_mm_run(napari, case_dir: Path) -> tuple[float, float]:
    viewer = napari.Viewer(show=True)
    try:
        viewer.open(str(case_dir), plugin="napari-entrust")
        run, _ = widgets(viewer)
        wait_for(lambda: run._pickers["t1"].currentText() != "")
        result = timed(run.run, lambda: run_done(run))
        assert run._status.text().startswith("done:"), run._status.text()
        return result
    finally:
        viewer.close()


def review_actions(napari) -> dict[str, tuple[float, float]]:
    import numpy as np

    viewer = napari.Viewer(show=True)
    try:
        viewer.open_sample("napari-entrust", "phantom_2mm")
        run, review = widgets(viewer)
        run.run()
        wait_for(lambda: run_done(run))
        regions = review.regions.find_regions()
        mask, samples = viewer.layers["mask"], np.asarray(viewer.layers["hypotheses"].data)
        row = next(i for i, r in enumerate(regions) if (samples[1][r.indices()] != mask.data[r.indices()]).any())
        review.regions.select(row)
        review.edits.adopt(1)
        out = {
            "re-sample with an edit (2 mm)": timed(
                review.resampling.resample, lambda: review.status.text().startswith(("re-sampled", "EnTrust"))
            )
        }
        assert review.status.text().startswith("re-sampled"), review.status.text()
        review.regions.select(0)  # the most uncertain region left
        out["explain a region (2 mm)"] = timed(
            review.explaining.explain_selected, lambda: review.status.text().startswith(("explained", "EnTrust"))
        )
        assert review.status.text().startswith("explained"), review.status.text()
        return out
    finally:
        viewer.close()


def table(result: dict) -> list[str]:
    lines = [
        "| action (K = 8, S = 10) | seconds, median (min–max) | target | longest GUI freeze |",
        "|---|---|---|---|",
    ]
    for name, target in TARGETS.items():
        s, gap = result[name]["seconds"], result[name]["gui_freeze_s"]["max"]
        verdict = "met" if s["median"] <= target else "missed"
        freeze = "met" if gap <= GUI_GAP_S else "missed"
        lines.append(
            f"| {name} | {s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}) | ≤ {target:g} s {verdict} "
            f"| {gap * 1000:.0f} ms (≤ {GUI_GAP_S * 1000:.0f} ms {freeze}) |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import napari

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in TARGETS}
    with tempfile.TemporaryDirectory(prefix="entrust-napari-speed-") as tmp:
        case_dir = benchmark_case(None, Path(tmp))
        for _ in range(args.repeats):
            runs["run a 1 mm case"].append(one_mm_run(napari, case_dir))
            for name, measured in review_actions(napari).items():
                runs[name].append(measured)
    result = {
        name: {"seconds": spread([s for s, _ in v]), "gui_freeze_s": spread([g for _, g in v])}
        for name, v in runs.items()
    }
    write_results(args.out, "napari_speed", result, table(result))


if __name__ == "__main__":
    main()
