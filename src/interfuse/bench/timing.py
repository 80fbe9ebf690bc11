"""Timing and memory measurement for ``interfuse bench``.

Timing: every variant of a case runs in the same process, interleaved: each *round* times
every variant (rotating their order, each the best of a few back-to-back calls) and records
each variant's ratio to the case's base variant *within that round*. Reported ratios are the
median over rounds of those per-round ratios, so slow drifts of a shared machine (other
processes taking a core for a second) cancel out instead of landing on one variant.

Memory: peak resident memory of one call, measured in a fresh subprocess (see
:mod:`interfuse.bench.memory`).

The allocator: glibc returns large freed blocks to the kernel (``munmap``) and hands out
fresh zero pages next time, so a tensor allocated on every call page-faults every call
(128 MiB: ~30 ms here, more than the arithmetic). By default the bench asks glibc to keep
freed memory for reuse (``mallopt``: no mmap, trimming only past 2 GiB free) and pre-faults
a large heap once, which is what jemalloc/tcmalloc (recommended by the PyTorch CPU
performance guide) do anyway, so ratios compare the algorithms' memory traffic rather than
the allocator's page faults. ``--malloc default`` measures with glibc as is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# glibc mallopt parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.mallopt  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return lib


def configure_malloc(mode: str, warm_bytes: int = 0) -> str:
    """Apply the allocator policy ``mode`` ('retain', 'track' or 'default'); return what held.

    With 'retain', ``warm_bytes`` of heap are allocated, touched and freed once, so later
    allocations reuse resident pages instead of page-faulting fresh ones (which would add
    tens of milliseconds to whichever variant happened to grow the heap).
    """
    if mode == "default":
        return "default"
    lib = _libc()
    if lib is None:
        return "default (mallopt unavailable)"
    if mode == "retain":
        # mallopt takes a C int: 2**31 - 1 is the largest trim threshold it can express.
        ok = lib.mallopt(_M_MMAP_MAX, 0) and lib.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        if not ok:
            return "default"
        if warm_bytes > 0:
            import torch

            torch.empty(warm_bytes, dtype=torch.uint8).fill_(1)
        gib = warm_bytes / 2**30
        return f"retain (glibc: M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB, {gib:.1f} GiB pre-faulted)"
    if mode == "track":
        ok = lib.mallopt(_M_MMAP_THRESHOLD, 1 << 16) and lib.mallopt(_M_TRIM_THRESHOLD, 1 << 16)
        return (
            "track (glibc: M_MMAP_THRESHOLD=64 KiB, M_TRIM_THRESHOLD=64 KiB)" if ok else "default"
        )
    raise ValueError(f"malloc mode must be 'retain', 'track' or 'default', got {mode!r}")


@dataclass
class Timing:
    """Per-variant times (seconds, one per round) and per-round ratios to the base."""

    times: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    base: str = ""
    rounds: int = 0
    reps: int = 0

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, name: str, to: str | None = None) -> float:
        """Median over rounds of ``t(name) / t(to)`` (``to`` defaults to the base)."""
        if to is None or to == self.base:
            return statistics.median(self.ratios[name])
        per_round = [a / b for a, b in zip(self.times[name], self.times[to])]
        return statistics.median(per_round)

    def spread(self, name: str) -> float:
        """Relative interquartile range of the times (a noise indicator)."""
        values = sorted(self.times[name])
        if len(values) < 4:
            return (values[-1] - values[0]) / max(statistics.median(values), 1e-12)
        q = statistics.quantiles(values, n=4)
        return (q[2] - q[0]) / max(statistics.median(values), 1e-12)


def _call_time(fn: Callable[[], object], reps: int) -> float:
    """Best of ``reps`` back-to-back calls (or the mean of a block for microsecond calls)."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _block_time(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def measure(
    variants: dict[str, Callable[[], object]],
    base: str,
    budget_s: float,
    min_rounds: int = 3,
    max_rounds: int = 15,
    block_s: float = 0.002,
    best_of: int = 1,
) -> Timing:
    """Time ``variants`` interleaved in rounds within about ``budget_s`` seconds.

    Each variant gets its own repetition count per round (best of ``reps``, more for fast
    variants, one for slow ones) so a 5 ms variant is not sampled once next to a 300 ms one.
    Calls shorter than ``block_s`` are timed as blocks of calls lasting about ``block_s``
    (microsecond calls: many calls per sample), each round keeping the best of ``best_of``
    blocks.
    """
    names = list(variants)
    est: dict[str, float] = {}
    for name in names:
        est[name] = _call_time(variants[name], 1)  # warm-up; also a (pessimistic) estimate
    # Short calls are timed as blocks of calls (timer resolution, Python overhead); a second
    # warm-up estimates them better than the first call, which pays for lazy setup.
    for name in names:
        if est[name] < 0.01:
            est[name] = min(est[name], _call_time(variants[name], 3))
    block = {n: max(1, int(block_s / max(est[n], 1e-7))) for n in names}
    reps = {n: 1 if block[n] > 1 else int(min(5, max(1, 0.03 // max(est[n], 1e-9)))) for n in names}
    per_round = sum(est[n] * (block[n] * best_of if block[n] > 1 else reps[n]) for n in names)
    rounds = int(max(min_rounds, min(max_rounds, budget_s // max(per_round, 1e-9))))
    out = Timing(times={n: [] for n in names}, ratios={n: [] for n in names}, base=base)
    out.rounds, out.reps = rounds, max(reps.values())
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            got: dict[str, float] = {}
            for n in order:
                fn = variants[n]
                if block[n] > 1:
                    got[n] = min(_block_time(fn, block[n]) for _ in range(best_of))
                else:
                    got[n] = _call_time(fn, reps[n])
            for n in names:
                out.times[n].append(got[n])
                out.ratios[n].append(got[n] / got[base])
    finally:
        if was_enabled:
            gc.enable()
    return out
