"""The progress bar a widget shows for its run: percentage, stage name and time left.

The only progress a run shows: in the widget, where the user waits. (napari's Activity bar is not
used: it sits in a hidden panel, and its animated indicator doubled a run's time under software
OpenGL.) Time left is extrapolated from the elapsed time and the fraction done (shown once 5 % are
done, so the first, uneven stage does not give a wild figure). It resets when a run ends.
"""

from __future__ import annotations

import time

from qtpy.QtWidgets import QProgressBar

ESTIMATE_FROM = 0.05  #: fraction done before a time left is shown


def time_left(elapsed_s: float, fraction: float) -> float | None:
    """Seconds left at this pace, or None before :data:`ESTIMATE_FROM` is done."""
    if fraction < ESTIMATE_FROM or fraction >= 1.0:
        return None
    return elapsed_s * (1.0 - fraction) / fraction


def describe_time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class ProgressLine(QProgressBar):
    """``set_running(True)``, ``show_progress(fraction, stage)`` from the runner, ``set_running(False)``."""

    def __init__(self):
        super().__init__(minimum=0, maximum=1000)
        self._started = time.perf_counter()
        self.setTextVisible(True)
        self.finish()

    def start(self) -> None:
        self._started = time.perf_counter()
        self.setValue(0)
        self.setFormat("starting")
        self.setVisible(True)

    def show_progress(self, fraction: float, stage: str) -> None:
        """One update; only what changed is set (each set repaints the bar)."""
        left = time_left(time.perf_counter() - self._started, fraction)
        text = f"{fraction:.0%} {stage}" + (f", about {describe_time(left)} left" if left is not None else "")
        value = int(round(fraction * 1000))
        if value != self.value():
            self.setValue(value)
        if text != self.format():
            self.setFormat(text)

    def set_running(self, running: bool) -> None:
        """Follow a runner's state: start when a run starts, finish when it ends."""
        if running:
            self.start()
        else:
            self.finish()

    def finish(self) -> None:
        """Back to empty and hidden (a run ended, failed or was cancelled)."""
        self.setValue(0)
        self.setFormat("")
        self.setVisible(False)
