"""Long work as generators: progress is yielded, so one code path drives the CLI, napari and tests.

Work that takes long is a generator that yields ``(fraction, message)`` and returns its result
(:data:`Steps`). :func:`run_to_end` drives it to the end, handing every update to a callback such
as the CLI's progress bar; the napari widgets run the same generator in a ``thread_worker``. Cancel
is a ``should_stop()`` callable the work checks between steps (:func:`stop_if_asked`), down to
every denoising step of the sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import closing
from typing import TypeVar

from .errors import Cancelled

T = TypeVar("T")

#: where progress goes: ``progress(fraction in [0, 1], message)``
Progress = Callable[[float, str], None]
#: True when the user asked to stop
ShouldStop = Callable[[], bool]
#: work that yields ``(fraction, message)`` as it goes and returns its result
Steps = Generator[tuple[float, str], None, T]


def run_to_end(steps: Steps[T], progress: Progress | None = None) -> T:
    """Drive ``steps`` to the end, passing every update to ``progress``; return what it returns.

    If anything raises on the way, ``steps`` is closed at once, on this thread: work suspended inside
    a context (``torch.inference_mode``, an open file) leaves it before the error goes on.
    """
    result: list = []

    def collect() -> Steps[None]:
        result.append((yield from steps))

    with closing(steps):
        for fraction, message in collect():
            if progress is not None:
                progress(fraction, message)
    return result[0]


def rescaled(
    steps: Steps[T], start: float, span: float, prefix: str = "", should_stop: ShouldStop | None = None
) -> Steps[T]:
    """Re-yield ``steps`` as part of a larger task: fraction ``start + span·f``, message ``prefix + m``.

    Like ``yield from``, it closes ``steps`` when it stops early (Cancel, an error, being closed), so
    the inner work leaves its contexts on this thread.
    """
    try:
        while True:
            try:
                fraction, message = next(steps)
            except StopIteration as done:
                return done.value
            stop_if_asked(should_stop)
            yield start + span * fraction, prefix + message
    finally:
        steps.close()


def stop_if_asked(should_stop: ShouldStop | None) -> None:
    """Raise :class:`~napari_entrust.errors.Cancelled` when the user asked to stop."""
    if should_stop is not None and should_stop():
        raise Cancelled()
