"""A method's own memory as the paper means it: the peak of live torch tensor bytes while it predicts.

Resident memory (RSS) on a CPU is dominated by torch's and oneDNN's first-use allocations (about
580 MB for any model here), so it cannot show a difference between a 52 k- and an 821 k-parameter
method. The torch profiler with ``profile_memory`` records every tensor allocation and free with
its size; their running sum is the live tensor memory, and its maximum the peak. Weights loaded
before the measured call are allocations the profiler does not see, so the caller adds them.
NumPy arrays are not tensors and are not counted, for either method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _walk(nodes) -> Iterator:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def peak_tensor_bytes(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()``'s result and the peak of tensor bytes it held live at once (beyond those held before)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = prof.profiler.kineto_results.experimental_event_tree()
    sizes = sorted(
        (n.start_time_ns, n.extra_fields.alloc_size) for n in _walk(events) if n.tag == _EventType.Allocation
    )
    live = peak = 0
    for _, size in sizes:  # frees are negative sizes
        live += size
        peak = max(peak, live)
    return result, peak


def tensor_bytes(modules) -> int:
    """Bytes of the parameters and buffers of ``modules`` (each counted once)."""
    seen, total = set(), 0
    for module in modules:
        for t in (*module.parameters(), *module.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total
