"""The GUI thread keeps answering while a run works in its thread (issue 19's 100 ms limit)."""

from __future__ import annotations

import time

import numpy as np
import pytest

napari = pytest.importorskip("napari")


@pytest.fixture
def frozen_heap():
    """Python's full garbage collections, measured while the test runs (start time, seconds).

    The objects that exist before the test (every earlier test's viewers: millions of them) are
    frozen out of the collector: in a full test session one full collection of that heap takes
    100-400 ms and can fall in any event-loop turn, which says nothing about the plugin.
    """
    import gc

    pauses: list[tuple[float, float]] = []
    started: list[float] = []

    def watch(phase, info):
        if info["generation"] == 2:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                t0 = started.pop()
                pauses.append((t0, time.perf_counter() - t0))

    gc.collect()
    gc.freeze()
    gc.callbacks.append(watch)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(watch)
        gc.unfreeze()


def test_heartbeat_never_stalls_during_a_run(opened_sample, qtbot, frozen_heap):
    """The GUI thread keeps answering (gaps ≤ 100 ms) while a real run works in its thread.

    Measured over the first run's work (model loading, encoding, sampling, assembling) and over a
    whole second run, including the in-place update of every result layer, each from the run's
    first progress message on. (The click and what it sets off in napari before the work starts,
    a re-layout of the window, take 70-250 ms under Xvfb with the code of
    before and after the architecture change alike. Inserting a layer into napari the first time
    costs napari 80-90 ms on a 2-core machine; those inserts happen one per event-loop turn after
    the first run's work ends.)
    """
    from qtpy.QtCore import QTimer

    viewer, run, _ = opened_sample
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()) if run._runner.running or measure_all else None)

    def longest_gap(beats: list[float], which: str) -> str:
        gaps = np.diff(beats)
        i = int(np.argmax(gaps))
        during = [f"{d * 1000:.0f} ms" for t, d in frozen_heap if beats[i] - 0.01 <= t <= beats[i + 1]]
        return (
            f"GUI blocked for {gaps[i] * 1000:.0f} ms during the {which}, {beats[i] - beats[0]:.2f} s in"
            f" (full garbage collections in that gap: {during or 'none'})"
        )

    measure_all = False
    run._samples.setValue(4)  # enough work for > 50 beats in each run (the re-run reuses the encoding)
    run._steps.setValue(8)
    run.run()  # the click itself (building the case: ~100 ms) is not counted
    qtbot.waitUntil(lambda: "%" in run._status.text(), timeout=60_000)  # the work has started
    timer.start()
    qtbot.waitUntil(lambda: not run._runner.running, timeout=120_000)
    timer.stop()
    first_beats = list(beats)
    qtbot.waitUntil(lambda: run._status.text().startswith("done:"), timeout=60_000)

    beats.clear()
    measure_all = True
    run._seed.setValue(1)  # new hypotheses, so every layer drawn from them is updated in place (the
    run.run()  # same inputs and settings would reuse the whole last run, and leave the layers as they are)
    qtbot.waitUntil(lambda: "%" in run._status.text(), timeout=60_000)
    timer.start()
    qtbot.waitUntil(lambda: run._status.text().startswith(("done:", "EnTrust")), timeout=120_000)
    timer.stop()
    assert run._status.text().startswith("done:")
    assert len(first_beats) > 50 and len(beats) > 50
    assert np.diff(first_beats).max() <= 0.100, longest_gap(first_beats, "first run")
    assert np.diff(beats).max() <= 0.100, longest_gap(beats, "re-run")
