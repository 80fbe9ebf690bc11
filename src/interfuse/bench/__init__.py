"""``interfuse bench``: every fusion and structured matrix against its baselines, in one run.

Each case times interfuse against, in the same process and interleaved, the bandwidth or GEMM
reference (one native op on already stacked / concatenated inputs), the naive algorithm
(stack then reduce; concatenate then project; build ``W`` then multiply), both public faces and,
when installed, PyTorch Geometric's ``MultiAggregation``. It reports ratios, not bare times;
peak memory per variant comes from a fresh process. Outputs (in ``--out``, default
``bench-results/``): ``bench-results.json``, ``bench-results.md`` and ``bench.png``.

Modes: ``--quick`` (the headline sizes, under two minutes on 2 cores), the default full run
(k ∈ {2, 4, 8, 16}, widths 256–4096, fp32 and bf16, batch 4096 for the matrices) and
``--tiny`` (seconds; what the tests run). See ``docs/benchmarks.md`` for the method.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from interfuse.bench import baselines
from interfuse.bench import cases as _cases
from interfuse.bench import report as _report
from interfuse.bench.checks import count_kernels, produced_shapes
from interfuse.bench.memory import measure_in_subprocess
from interfuse.bench.timing import Timing, configure_malloc, measure

__all__ = ["main", "run"]

_BUDGET = {"tiny": 0.05, "quick": 0.4, "full": 4.0}
#: Seconds per small-size case (microsecond calls: rounds are cheap, but there are many cases).
_SMALL_BUDGET = {"tiny": 0.02, "quick": 0.25, "full": 1.5}
_MIN_ROUNDS = {"tiny": 2, "quick": 3, "full": 5}
_WARM = {"tiny": 0, "quick": 1 << 30, "full": 3 << 30}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="interfuse bench",
        description="Benchmark interfuse's fusions and structured matrices against baselines.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="headline sizes only (< 2 min)")
    size.add_argument("--tiny", action="store_true", help="a few seconds, tiny sizes (tests)")
    p.add_argument("--out", default="bench-results", help="output directory (bench-results/)")
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="TEXT",
        help="run only cases whose id contains this text (repeat: any of them)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--malloc",
        choices=("retain", "default"),
        default="retain",
        help="glibc policy for timing: keep freed memory (default) or glibc's own",
    )
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per case")
    return p


class _Progress:
    """tqdm when installed, else one printed line per case."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="case", dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(label[-60:])
            self.bar.update(1)
        else:
            print(f"[{self.done}/{self.total}] {label}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def _ratio_table(case: _cases.Case, timing: Timing) -> dict[str, float]:
    names = list(timing.times)
    r: dict[str, float] = {}
    if case.spec["group"] == "small":
        for a, b in (
            ("modern", "plain"),
            ("kernel", "plain"),
            ("tinybig", "original"),
            ("modern", "pyg"),
        ):
            if a in names and b in names:
                r[f"{a}/{b}"] = timing.ratio(a, b)
        return r
    if "interfuse" not in names:
        return r
    for other in ("reference", "floor"):
        if other in names:
            r[f"interfuse/{other}"] = timing.ratio("interfuse", other)
    refs = [n for n in case.bandwidth if n in names]
    if len(refs) == len(case.bandwidth) and refs and "floor" in names:
        for variant in ("interfuse", "compiled"):
            if variant in names:
                per_round = [
                    t / min(timing.times[n][i] for n in refs)
                    for i, t in enumerate(timing.times[variant])
                ]
                r[f"{variant}/bandwidth"] = statistics.median(per_round)
    for other in ("naive", "modern", "tinybig", "pyg", "reference"):
        if other in names:
            r[f"{other}/interfuse"] = timing.ratio(other, "interfuse")
    if "naive" in names and "reference" in names:
        r["naive/reference"] = timing.ratio("naive", "reference")
    if "tinybig" in names and "modern" in names:
        r["tinybig/modern"] = timing.ratio("tinybig", "modern")
    if "naive" in names:
        r["interfuse/naive"] = timing.ratio("interfuse", "naive")
    return r


def _targets(case: _cases.Case, ratios: dict[str, float]) -> list[dict[str, Any]]:
    """The case's targets with the measured ratio; ``met`` is ``None`` where a variant the
    target compares was not run (e.g. a skipped optional baseline)."""
    out = []
    for target in case.targets:
        t = dict(target)
        t["ratio"] = value = ratios.get(f"{t['variant']}/{t['against']}")
        compiled = ratios.get(f"compiled/{t['against']}") if t["variant"] == "interfuse" else None
        if compiled is not None:
            t["compiled_ratio"] = compiled
        t["met"] = None if value is None else bool(value <= t["max_ratio"])
        if value is not None and t["max_ratio"] < 1:
            t["speedup"] = 1 / value
        out.append(t)
    return out


def _run_case(spec: dict[str, Any], budget: float, min_rounds: int) -> dict[str, Any]:
    case = _cases.build_case(spec)
    variants = case.variants()
    threads = spec.get("threads")
    before = torch.get_num_threads()
    small = spec["group"] == "small"
    if threads:
        torch.set_num_threads(threads)
    try:
        timing = measure(
            variants,
            case.base,
            budget,
            # microsecond calls: rounds are cheap, and more of them outvote preempted ones
            min_rounds=max(min_rounds, 5) if small else min_rounds,
            block_s=0.003 if small else 0.002,
            best_of=3 if small else 1,
        )
    finally:
        torch.set_num_threads(before)
    ratios = _ratio_table(case, timing)
    result: dict[str, Any] = {
        "id": case.id,
        "group": spec["group"],
        "name": spec["name"],
        "params": {k: v for k, v in spec.items() if k not in ("id", "group", "name")},
        "base": case.base,
        "rounds": timing.rounds,
        "reps": timing.reps,
        "variants": {
            n: {
                "median_ms": timing.median(n) * 1e3,
                "spread": timing.spread(n),
                "ratio": timing.ratio(n),
            }
            for n in timing.times
        },
        "ratios": ratios,
        "targets": _targets(case, ratios),
        "checks": {},
    }
    del variants
    if spec["group"] == "structured" and spec["phase"] == "forward+backward":
        result["checks"]["allocates_nxD"] = _allocates_matrix(spec)
    gc.collect()
    return result


#: Extra peak memory of an element-wise fusion's forward, in output sizes (issue 16).
MEMORY_TARGET = 1.5
#: Rows whose forward memory the quick run measures: the two-pass kernels (see
#: docs/benchmarks.md), which take the most, and the weighted sum.
_QUICK_MEMORY = ("weighted_sum", "max", "prod", "l1_norm", "l2_norm")


def _memory_judged(spec: dict[str, Any]) -> bool:
    """Whether the memory target applies: headline element-wise forward cases."""
    return (
        spec["group"] in ("elementwise", "masked")
        and bool(spec.get("headline"))
        and spec["phase"] == "forward"
        and spec["name"] != "median"
    )


def _allocates_matrix(spec: dict[str, Any]) -> bool:
    """Whether a training step (forward+backward) of the factored matrix creates any tensor of
    shape ``(n, D)`` or ``(D, n)``, traced on an 8-row batch (so no batch-sized tensor can be
    mistaken for W)."""
    small = {**spec, "batch": 8, "id": spec["id"] + "/trace", "variants": ["interfuse"]}
    n, D = spec["out_features"], spec["in_features"]
    shapes = produced_shapes(_cases.build_case(small).variants()["interfuse"])
    return (n, D) in shapes or (D, n) in shapes


def _face_kernels(specs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which shared kernels each face calls, for the headline element-wise cases."""
    rows = []
    for spec in specs:
        case = _cases.build_case(spec)
        variants = case.variants()
        if "modern" not in variants or "tinybig" not in variants:
            continue
        called = {}
        for face in ("modern", "tinybig"):
            with count_kernels() as calls:
                variants[face]()
            called[face] = sorted(calls)
        rows.append(
            {
                "id": spec["id"],
                "modern": called["modern"],
                "tinybig": called["tinybig"],
                "same": called["modern"] == called["tinybig"],
            }
        )
        del variants
    gc.collect()
    return rows


def _crossover(
    results: list[dict[str, Any]], specs: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for r in results:
        if r["group"] != "crossover":
            continue
        spec = specs[r["id"]]
        f_ms = r["variants"]["factored"]["median_ms"]
        d_ms = r["variants"]["materialized"]["median_ms"]
        gemm_ms = r["variants"]["dense"]["median_ms"]
        auto_factored = _cases.model_choice(spec)
        chosen = f_ms if auto_factored else d_ms
        out.append(
            {
                "name": spec["name"],
                "in_features": spec["in_features"],
                "out_features": spec["out_features"],
                "rows": spec["rows"],
                "phase": spec["phase"],
                "factored_ms": f_ms,
                "dense_ms": d_ms,
                "dense_layer_ms": gemm_ms,
                "dense_over_factored": d_ms / f_ms,
                "dense_layer_over_structured": gemm_ms / min(f_ms, d_ms),
                "faster": "factored" if f_ms <= d_ms else "materialized",
                "auto": "factored" if auto_factored else "materialized",
                "auto_loss": chosen / min(f_ms, d_ms),
            }
        )
    return out


def _crossover_summary(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    agree = sum(1 for c in rows if c["faster"] == c["auto"])
    worst = max(rows, key=lambda c: c["auto_loss"])
    dense_wins = [c for c in rows if c["faster"] == "materialized"]
    text = (
        f"`mode='auto'` picks the faster path in {agree} of {len(rows)} cases; its worst choice "
        f"costs {worst['auto_loss']:.2f}× ({worst['name']} {worst['in_features']}→"
        f"{worst['out_features']}, {worst['rows']} rows, {worst['phase']})."
    )
    if dense_wins:
        where = ", ".join(
            f"{c['name']} {c['in_features']}→{c['out_features']}@{c['rows']}" for c in dense_wins
        )
        text += f" Materializing was faster at: {where}."
    else:
        text += " The factored path was faster everywhere measured."
    beats: dict[tuple[str, str], int] = {}
    for c in rows:
        if c["dense_layer_over_structured"] >= 1:
            key = (c["name"], c["phase"])
            size = c["in_features"] * c["out_features"]
            beats[key] = min(beats.get(key, size), size)
    if beats:
        text += " Faster than a dense layer of the same shape from: " + ", ".join(
            f"{name} ({phase}) {int(size**0.5)}²" for (name, phase), size in sorted(beats.items())
        )
        text += " (smallest square size where it won at some batch)."
    return text


def run(args: argparse.Namespace, echo: bool = True) -> dict[str, Any]:
    """Run the benchmark described by parsed ``args``; write and return the payload."""
    # Load the optional baselines once, then move every object alive so far (torch, PyG,
    # tinyBIG: hundreds of thousands) out of the collector's reach: each case's gc.collect()
    # then scans only the case's own objects (1-2 s per collection otherwise).
    baselines.tinybig_original()
    baselines.pyg_aggr()
    gc.collect()
    gc.freeze()
    try:
        return _run(args, echo)
    finally:
        gc.unfreeze()


def _run(args: argparse.Namespace, echo: bool) -> dict[str, Any]:
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = configure_malloc(args.malloc, _WARM[mode])
    specs = _cases.plan(mode)
    if args.only:
        specs = [s for s in specs if any(text in s["id"] for text in args.only)]
    budget = args.budget if args.budget is not None else _BUDGET[mode]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    notes: list[str] = []
    phase_s: dict[str, float] = {}
    progress = _Progress(len(specs), echo)
    results = []
    small_budget = args.budget if args.budget is not None else _SMALL_BUDGET[mode]
    for spec in specs:
        seconds = small_budget if spec["group"] == "small" else budget
        results.append(_run_case(spec, seconds, _MIN_ROUNDS[mode]))
        progress.step(spec["id"])
    progress.close()
    notes += baselines.notes()
    phase_s["timing"] = time.perf_counter() - start
    by_id = {s["id"]: s for s in specs}
    if not args.no_memory:
        mem_specs = [s for s in specs if s["group"] not in ("crossover", "small")]
        if mode == "tiny":
            mem_specs = mem_specs[:1]
        if mode == "quick":  # the memory target's cases where the kernels take the most
            mem_specs = [s for s in mem_specs if _memory_judged(s) and s["name"] in _QUICK_MEMORY]
        if echo:
            print(
                f"measuring peak memory of {len(mem_specs)} cases in a fresh process...", flush=True
            )
        if mode == "quick":
            mem_specs = [{**s, "variants": ["interfuse"]} for s in mem_specs]
        mem = measure_in_subprocess(mem_specs, threads=torch.get_num_threads())
        for r in results:
            row = mem.get(r["id"])
            if not row:
                continue
            out_bytes = row.get("output_bytes") or 1
            r["memory"] = {
                name: {
                    "peak_mib": None if peak is None else peak / 2**20,
                    "x_output": None if peak is None else peak / out_bytes,
                }
                for name, peak in row["peaks"].items()
            }
            x_out = r["memory"].get("interfuse", {}).get("x_output")
            if _memory_judged(by_id[r["id"]]) and x_out is not None:
                limit = MEMORY_TARGET
                r["targets"].append(
                    {
                        "variant": "interfuse",
                        "against": "memory",
                        "max_ratio": limit,
                        "text": f"≤ {limit:g} output sizes of extra peak memory",
                        "ratio": x_out,
                        "met": bool(x_out <= limit),
                    }
                )
        if not mem:
            notes.append("peak memory could not be measured (see stderr).")
        phase_s["memory"] = time.perf_counter() - start - sum(phase_s.values())
    # Which kernels each face calls: at small sizes (the calls are the same at any size).
    seen: set[str] = set()
    face_specs = []
    for s in specs:
        if s["group"] == "small" and s["phase"] == "forward" and s["name"] not in seen:
            seen.add(s["name"])
            face_specs.append(s)
    face_specs += [
        {k: v for k, v in s.items() if k != "variants"} | {"batch": 8, "id": s["id"] + "/b8"}
        for s in specs
        if s["group"] in ("projection", "structured") and s["phase"] == "forward"
    ]
    face_kernels = _face_kernels(face_specs)
    phase_s["checks"] = time.perf_counter() - start - sum(phase_s.values())
    crossover = _crossover(results, by_id)
    payload: dict[str, Any] = {
        "meta": {
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "mode": mode,
            "machine": _machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "malloc": malloc,
            "budget_s_per_case": budget,
            "seconds": 0.0,
            "phase_seconds": phase_s,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "results": [r for r in results if r["group"] != "crossover"],
        "crossover": crossover,
        "crossover_summary": _crossover_summary(crossover),
        "face_kernels": face_kernels,
        "notes": notes,
    }
    payload["meta"]["seconds"] = time.perf_counter() - start
    _report.write_json(out_dir / "bench-results.json", payload)
    (out_dir / "bench-results.md").write_text(_report.markdown(payload))
    if not args.no_plot and not _report.plot(out_dir / "bench.png", payload):
        payload["notes"].append("matplotlib is not installed: no plot was written.")
        _report.write_json(out_dir / "bench-results.json", payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``interfuse bench`` (see ``interfuse bench --help``)."""
    args = _parser().parse_args(argv)
    payload = run(args)
    out = Path(args.out)
    print(f"wrote {out / 'bench-results.json'}, {out / 'bench-results.md'}", end="")
    print(f", {out / 'bench.png'}" if (out / "bench.png").exists() and not args.no_plot else "")
    missed = _report.missed(payload)
    if missed:
        print(f"{len(missed)} target(s) not met on this run:")
        for line in missed:
            print(f"  {line}")
    unjudged = _report.unjudged(payload)
    if unjudged:
        print(f"{len(unjudged)} target(s) not judged (a baseline was skipped; see the notes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
