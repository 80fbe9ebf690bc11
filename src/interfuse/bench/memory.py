"""Peak memory of one call, measured in a fresh process.

``python -m interfuse.bench.memory`` reads a JSON list of case specs on stdin, builds each case
(its inputs) and, for every variant, runs one warm-up call, then: ``gc.collect()``, reset the
kernel's peak-RSS mark (``/proc/self/clear_refs``), read ``VmRSS``, run the call once, read
``VmHWM``. The difference is the peak of memory the call touched beyond what existed before:
its outputs, gradients and every temporary, including those allocated inside ATen kernels
(which a tensor-level tracker would miss). glibc is told to return freed blocks at once
(``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` = 64 KiB), so memory freed by one call cannot hide
the next call's allocations. Resolution: pages (4 KiB).

Where ``/proc/self/clear_refs`` cannot be written (not Linux), the worker measures only the
first variant of a case from ``ru_maxrss`` and the parent runs one worker per variant.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from typing import Any

from interfuse.bench.timing import configure_malloc


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _measure_one(fn: Any) -> float | None:
    """Peak bytes touched by ``fn()`` beyond the memory in use before it."""
    gc.collect()
    if _reset_peak():
        before = _status_kib("VmRSS")
        out = fn()
        peak = _status_kib("VmHWM")
        del out
        if before is None or peak is None:
            return None
        return max(0, peak - before) * 1024.0
    # Fallback: ru_maxrss only grows, so it is valid for the first measurement of a process.
    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = _status_kib("VmRSS") or before_max
    out = fn()
    del out
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(0, after - max(before, before_max)) * 1024.0


def worker(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Measure every variant of every spec (run inside the fresh process)."""
    from interfuse.bench.cases import build_case

    configure_malloc("track")
    results = []
    for spec in specs:
        case = build_case(spec)
        variants = case.variants()
        only = spec.get("_only")  # the spec's own "variants" already filtered the case
        peaks: dict[str, float | None] = {}
        for name, fn in variants.items():
            if only is not None and name != only:
                continue
            fn()  # warm-up: thread pools, autograd engine, lazy buffers
            try:
                peaks[name] = _measure_one(fn)
            except RuntimeError as err:  # e.g. out of memory
                peaks[name] = None
                print(f"memory: {spec['id']}/{name}: {err}", file=sys.stderr)
        results.append({"id": spec["id"], "peaks": peaks, "output_bytes": case.output_bytes})
        del variants, case
        gc.collect()
    return results


def measure_in_subprocess(
    specs: list[dict[str, Any]], threads: int | None = None, timeout: float = 600.0
) -> dict[str, dict[str, Any]]:
    """Run :func:`worker` on ``specs`` in a fresh interpreter; results keyed by spec id."""
    if not specs:
        return {}
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    if not _reset_peak():  # no clear_refs: one process per (case, variant)
        out: dict[str, dict[str, Any]] = {}
        for spec in specs:
            from interfuse.bench.cases import build_case

            names = list(build_case(spec).variant_names())
            merged: dict[str, Any] = {"peaks": {}, "output_bytes": None}
            for name in names:
                res = _run([{**spec, "_only": name}], env, timeout)
                if spec["id"] in res:
                    merged["peaks"].update(res[spec["id"]]["peaks"])
                    merged["output_bytes"] = res[spec["id"]]["output_bytes"]
            out[spec["id"]] = merged
        return out
    return _run(specs, env, timeout)


def _run(specs: list[dict[str, Any]], env: dict[str, str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "interfuse.bench.memory"],
        input=json.dumps(specs),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        print(f"memory worker failed ({proc.returncode}): {proc.stderr[-2000:]}", file=sys.stderr)
        return {}
    try:
        rows = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        print(f"memory worker printed no result: {proc.stdout[-500:]}", file=sys.stderr)
        return {}
    return {row["id"]: row for row in rows}


def _main() -> int:
    specs = json.loads(sys.stdin.read())
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    print(json.dumps(worker(specs)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
