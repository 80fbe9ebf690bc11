"""Copies avoided: interfuse's fusions against the obvious ``torch.stack``/``torch.cat`` versions.

For ``k`` inputs of shape ``(rows, width)`` (default 8 × 4096 × 1024 float32, 16 MiB each) it
measures, per variant, the best-of-n wall time of a call and the peak memory the call adds on
top of its inputs (output included), then prints the ratios ours / baseline.

* element-wise fusions (forward, no grad): interfuse's blocked kernels vs
  ``torch.stack(xs)`` reduced over dim 0 (what tinyBIG does);
* the weighted sum in training (forward + backward);
* ``ProjectedConcatFusion`` with a dense matrix (one GEMM per input, accumulated in place) vs
  ``torch.nn.functional.linear(torch.cat(xs, -1), W, b)``.

Peak memory is read from the kernel (``VmHWM`` minus ``VmRSS`` before the call, Linux only) in a
fresh subprocess per variant, with glibc's mmap threshold fixed so that freed blocks go back to
the system. Usage::

    python benchmarks/copies.py [--k 8] [--rows 4096] [--width 1024] [--out 1024] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from interfuse.fusion import (
    MaxFusion,
    MeanFusion,
    NormFusion,
    ProdFusion,
    ProjectedConcatFusion,
    SumFusion,
    WeightedSumFusion,
)

MiB = 1024 * 1024


def _inputs(args: argparse.Namespace, grad: bool = False) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    xs = [torch.rand(args.rows, args.width, generator=gen) + 0.5 for _ in range(args.k)]
    return [x.requires_grad_() for x in xs] if grad else xs


def _variants(args: argparse.Namespace) -> dict[str, tuple[Callable[[], object], bool]]:
    """name → (a zero-argument call, whether it needs inputs with requires_grad)."""
    k = args.k
    w = torch.full((k,), 1.0 / k)
    ws = WeightedSumFusion(k, learnable=False)
    wl = WeightedSumFusion(k)
    proj = ProjectedConcatFusion([args.width] * k, args.out, matrix="dense")
    weight, bias = proj.matrix.materialize().detach(), proj.bias
    assert bias is not None
    xs: list[torch.Tensor] = []  # filled by the worker before the call
    shape = (k, 1, 1)
    table: dict[str, tuple[Callable[[], object], bool]] = {
        "sum/ours": (lambda: SumFusion()(xs), False),
        "sum/stack": (lambda: torch.stack(xs).sum(0), False),
        "mean/ours": (lambda: MeanFusion()(xs), False),
        "mean/stack": (lambda: torch.stack(xs).mean(0), False),
        "weighted_sum/ours": (lambda: ws(xs), False),
        "weighted_sum/stack": (lambda: (w.view(shape) * torch.stack(xs)).sum(0), False),
        "max/ours": (lambda: MaxFusion()(xs), False),
        "max/stack": (lambda: torch.stack(xs).amax(0), False),
        "prod/ours": (lambda: ProdFusion()(xs), False),
        "prod/stack": (lambda: torch.stack(xs).prod(0), False),
        "l2_norm/ours": (lambda: NormFusion()(xs), False),
        "l2_norm/stack": (lambda: torch.linalg.vector_norm(torch.stack(xs), dim=0), False),
        "weighted_sum_train/ours": (lambda: wl(xs).sum().backward(), True),
        "weighted_sum_train/stack": (
            lambda: (wl.weight.view(shape) * torch.stack(xs)).sum(0).sum().backward(),
            True,
        ),
        "projected_dense/ours": (lambda: proj(xs), False),
        "projected_dense/cat": (
            lambda: torch.nn.functional.linear(torch.cat(xs, -1), weight, bias),
            False,
        ),
    }
    table["_xs"] = (lambda: xs, False)  # the worker's handle on the input list
    return table


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in bytes."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def _worker(args: argparse.Namespace) -> None:
    """Measure one variant's peak extra memory in this fresh process; print it as JSON."""
    table = _variants(args)
    call, grad = table[args.worker]
    holder = table["_xs"][0]()
    assert isinstance(holder, list)
    holder.extend(_inputs(args, grad))
    with torch.no_grad() if not grad else torch.enable_grad():
        call()  # warm-up: one-time allocations (thread pools, the matrix's first GEMM) settle
        for x in holder:
            x.grad = None
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before, _ = _rss()
        result = call()
        _, peak = _rss()
    del result
    print(json.dumps({"extra": peak - before}))


def _time_pair(
    calls: list[Callable[[], object]], repeat: int, grad: bool, xs: list[torch.Tensor]
) -> list[float]:
    """Best-of-``repeat`` wall time of each call, the calls interleaved so that both see the
    same load (the machine is shared)."""
    times: list[list[float]] = [[] for _ in calls]
    with torch.no_grad() if not grad else torch.enable_grad():
        for call in calls:
            call()
        for _ in range(repeat):
            for call, bucket in zip(calls, times):
                for x in xs:
                    x.grad = None
                start = time.perf_counter()
                call()
                bucket.append(time.perf_counter() - start)
    return [min(bucket) for bucket in times]


def _memory(name: str, argv: list[str]) -> float | None:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [sys.executable, __file__, *argv, "--worker", name]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["extra"]) / MiB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--out", type=int, default=1024, help="output width of the projection")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--only", default="", help="comma-separated fusion names to run")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        _worker(args)
        return
    shape_argv = [f"--k={args.k}", f"--rows={args.rows}", f"--width={args.width}"]
    shape_argv += [f"--out={args.out}", f"--threads={args.threads}"]
    size = args.rows * args.width * 4 / MiB
    print(
        f"k={args.k} inputs of {args.rows}×{args.width} float32 ({size:.0f} MiB each, "
        f"{args.k * size:.0f} MiB in all); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; projection to {args.out}; best of {args.repeat}"
    )
    table = _variants(args)
    holder = table.pop("_xs")[0]()
    assert isinstance(holder, list)
    names = sorted(
        {n.split("/")[0] for n in table},
        key=list(dict.fromkeys(n.split("/")[0] for n in table)).index,
    )
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    header = f"{'fusion':<20}{'variant':<8}{'time ms':>10}{'extra MiB':>12}"
    print(header + f"{'time ratio':>12}{'mem ratio':>11}")
    for name in names:
        variants = [v for v in table if v.split("/")[0] == name]
        grad = table[variants[0]][1]
        holder[:] = _inputs(args, grad)
        times = _time_pair([table[v][0] for v in variants], args.repeat, grad, holder)
        mems = [_memory(v, shape_argv) for v in variants]
        (t0, t1), (m0, m1) = times, mems
        for i, (variant, t, mem) in enumerate(zip(variants, times, mems)):
            mem_s = "n/a" if mem is None else f"{mem:.1f}"
            line = (
                f"{name if i == 0 else '':<20}{variant.split('/')[1]:<8}{t * 1e3:>10.1f}{mem_s:>12}"
            )
            if i == 0:
                ratio_m = "n/a" if m0 is None or m1 is None or m1 <= 0 else f"{m0 / m1:.2f}"
                line += f"{t0 / t1:>12.2f}{ratio_m:>11}"
            print(line)
    holder.clear()


if __name__ == "__main__":
    main()
