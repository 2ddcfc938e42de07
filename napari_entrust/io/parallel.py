"""Writing several files at once: gzip and NumPy release the GIL, so two cores write two files.

A prediction is 18 compressed NIfTI files; one after the other they took longer than the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def in_parallel(jobs: Sequence[Callable[[], object]], workers: int | None = None) -> list:
    """Run ``jobs`` in threads (at most one per core, four at most); their results in order.

    The first error (or Ctrl-C) is raised once every job already started has finished and the
    rest are cancelled, so no thread is still writing when the caller cleans up after it.
    """
    workers = workers or min(4, os.cpu_count() or 1, max(len(jobs), 1))
    if workers <= 1:
        return [job() for job in jobs]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="entrust-write")
    try:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
