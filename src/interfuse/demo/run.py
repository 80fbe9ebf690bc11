"""``interfuse demo``: the multi-view study, one model per strategy, variant and seed."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interfuse.demo.data import (
    DemoDataError,
    MultiViewData,
    load_csv,
    load_digits,
    load_multifeature,
)
from interfuse.demo.model import (
    MultiViewNet,
    Strategy,
    baseline_strategies,
    build_model,
    count_trainable,
    fusion_strategies,
    model_from_config,
)
from interfuse.demo.report import (
    DROPOUT,
    PLAIN,
    Stat,
    StrategyResult,
    VariantResult,
    best_fusion,
    recommendations,
    text_table,
    write_json,
    write_markdown,
    write_plot,
)
from interfuse.demo.train import RunOutcome, Settings, missing_view_masks, train_run
from interfuse.matrices import MATRICES

__all__ = ["QUICK", "Settings", "load_model", "main", "reload_check", "run_demo"]

#: What ``--quick`` changes.
QUICK = {"epochs": 4, "width": 32, "seeds": 1, "jobs": 1}
#: Seed of the missing-view masks (the same masks for every model).
MASK_SEED = 1234


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="interfuse demo",
        description=(
            "A multi-view study: one head per view, fused by every registered fusion (and "
            "projected concatenation with every registered matrix), against single views and "
            "plain concatenation; validation-chosen, over several seeds, with views missing at "
            "test time, trained with and without input dropout."
        ),
    )
    p.add_argument(
        "--dataset",
        choices=("multifeature", "digits"),
        default="multifeature",
        help="bundled data: UCI Multiple Features (six views; default) or scikit-learn's digits "
        "(its image in bands of rows)",
    )
    p.add_argument("--data", metavar="FILE.csv", help="your own CSV table (header row, numeric)")
    p.add_argument("--target", metavar="COLUMN", help="class column of --data")
    p.add_argument(
        "--views",
        type=int,
        help="views to cut --data (default 3) or digits (default 4) into: contiguous columns",
    )
    p.add_argument(
        "--out", metavar="DIR", default="demo-results", help="output folder (default demo-results)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run: {QUICK['epochs']} epochs, width {QUICK['width']}, one seed, one "
        "process",
    )
    p.add_argument("--epochs", type=int, help=f"training epochs (default {Settings.epochs})")
    p.add_argument("--width", type=int, help=f"head width n (default {Settings.width})")
    p.add_argument("--seeds", type=int, help=f"models per strategy (default {Settings.seeds})")
    p.add_argument("--seed", type=int, default=Settings.seed, help="first seed (default 0)")
    p.add_argument("--batch-size", type=int, default=Settings.batch_size, help="default 64")
    p.add_argument("--lr", type=float, default=Settings.lr, help="Adam learning rate (3e-3)")
    p.add_argument(
        "--input-dropout",
        type=float,
        default=Settings.input_dropout,
        help="the fusions' input_dropout of the second variant (default 0.5; 0 skips it)",
    )
    p.add_argument(
        "--missing",
        type=float,
        default=Settings.missing,
        help="probability that a view is absent from a test row (default 0.5)",
    )
    p.add_argument(
        "--strategies",
        metavar="NAMES",
        help="comma-separated subset of the strategies (default: all of them)",
    )
    p.add_argument(
        "--head-matrix",
        default=Settings.head_matrix,
        choices=sorted(MATRICES),
        metavar="MATRIX",
        help="matrix of the view heads (default dense; one of " + ", ".join(sorted(MATRICES)) + ")",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help=f"worker processes, each training one strategy at a time (default {Settings.jobs}: "
        "the cores, at most 2); the numbers do not depend on it",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=Settings.threads,
        help="torch CPU threads (small models train fastest on one)",
    )
    p.add_argument("--no-progress", action="store_true", help="print only the summary")
    return p


def _error(message: str) -> int:
    print(f"interfuse demo: error: {message}", file=sys.stderr)
    return 2


def _reason(exc: OSError) -> str:
    """``exc`` without the ``[Errno N]`` prefix, naming the path that failed."""
    if isinstance(exc, FileExistsError) and exc.filename:
        return f"{exc.filename} exists and is not a folder"
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def all_strategies(view_names: list[str]) -> tuple[list[Strategy], dict[str, str]]:
    """The fusions under test (from the registries), then the baselines; and the registered
    fusions left out, with the reason."""
    fusions, skipped = fusion_strategies()
    return [*fusions, *baseline_strategies(view_names)], skipped


def _select(strategies: list[Strategy], names: str | None) -> list[Strategy]:
    if not names:
        return strategies
    by_name = {s.name: s for s in strategies}
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in by_name]
    if unknown or not chosen:
        raise ValueError(f"--strategies: unknown {unknown}; choose from {list(by_name)}")
    return [by_name[n] for n in chosen]


def load_model(path: str | Path) -> MultiViewNet:
    """Load a model saved by ``interfuse demo`` (``best_model.pt``: config and
    ``state_dict``), rebuilt with :func:`~interfuse.config.from_config`, in eval mode."""
    saved = torch.load(path, weights_only=True)
    model = model_from_config(saved["config"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def reload_check(model: MultiViewNet, data: MultiViewData, path: Path) -> dict[str, Any]:
    """Save ``model`` (config + ``state_dict``) to ``path``, rebuild it with
    :func:`~interfuse.config.from_config`, and compare its test-set logits with the original's."""
    torch.save({"config": model.to_config(), "state_dict": model.state_dict()}, path)
    clone = load_model(path)
    model.eval()
    with torch.no_grad():
        a = model(data.views["test"])
        b = clone(data.views["test"])
    same = int((a.argmax(-1) == b.argmax(-1)).sum())
    diff = float((a - b).abs().max())
    rows = int(a.shape[0])
    return {
        "passed": same == rows and diff <= 1e-5,
        "rows": rows,
        "matching_predictions": same,
        "max_abs_diff": diff,
        "path": path.name,
    }


def _variant(runs: list[RunOutcome]) -> VariantResult:
    def stat(name: str) -> Stat | None:
        values = [getattr(r, name) for r in runs]
        return None if values[0] is None else Stat.of(values)

    return VariantResult(
        val=Stat.of([r.val for r in runs]),
        test=Stat.of([r.test for r in runs]),
        val_missing=stat("val_missing"),
        test_missing=stat("test_missing"),
        train_seconds=round(sum(r.seconds for r in runs) / len(runs), 3),
        epochs=[r.epoch for r in runs],
    )


@dataclass
class _Task:
    """The models of one strategy trained one way (every seed)."""

    index: int
    strategy: Strategy
    variant: str
    rate: float


@dataclass
class _Done:
    task: _Task
    result: VariantResult
    best: RunOutcome  # the seed with the best validation accuracy


#: What a worker process trains on (set once per process by :func:`_init_worker`).
_CONTEXT: dict[str, Any] = {}


def _init_worker(context: dict[str, Any]) -> None:
    torch.set_num_threads(max(1, context["settings"].threads))
    _CONTEXT.update(context)


def _train_task(task: _Task) -> _Done:
    data: MultiViewData = _CONTEXT["data"]
    settings: Settings = _CONTEXT["settings"]
    runs = []
    for seed in _CONTEXT["seeds"]:
        model = build_model(
            task.strategy,
            data.view_dims,
            data.num_classes,
            width=settings.width,
            head_matrix=settings.head_matrix,
            input_dropout=task.rate,
            seed=seed,
        )
        runs.append(
            train_run(
                model,
                data,
                task.strategy,
                settings,
                seed=seed,
                masks=_CONTEXT["masks"],
                select_on_missing=task.variant == DROPOUT,
            )
        )
    return _Done(task, _variant(runs), max(runs, key=lambda r: r.val))


def _train_all(tasks: list[_Task], context: dict[str, Any], jobs: int) -> Iterator[_Done]:
    """Train ``tasks`` in this process, or in ``jobs`` worker processes (spawned: a fork of a
    process that has run torch is not safe), yielding each as it finishes."""
    if jobs <= 1 or len(tasks) <= 1:
        saved = dict(_CONTEXT)
        threads = torch.get_num_threads()
        _init_worker(context)
        try:
            yield from map(_train_task, tasks)
        finally:
            _CONTEXT.clear()
            _CONTEXT.update(saved)
            torch.set_num_threads(threads)
        return
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=spawn, initializer=_init_worker, initargs=(context,)
    ) as pool:
        futures = [pool.submit(_train_task, task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def run_demo(
    data: MultiViewData,
    settings: Settings,
    out: Path,
    *,
    strategies: list[Strategy] | None = None,
    skipped: dict[str, str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train every strategy on ``data`` (each seed; fusions also with input dropout;
    ``settings.jobs`` processes), write the reports into ``out`` and return the JSON payload
    (also written as ``results.json``). The numbers do not depend on ``jobs``."""
    if strategies is None:
        strategies, skipped = all_strategies(data.view_names)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    masks = {
        split: missing_view_masks(data.rows(split), data.num_views, settings.missing, MASK_SEED + i)
        for i, split in enumerate(("val", "test"))
    }
    seeds = list(range(settings.seed, settings.seed + settings.seeds))
    tasks = [
        _Task(i, strategy, variant, rate)
        for i, strategy in enumerate(strategies)
        for variant, rate in (
            [(PLAIN, 0.0), (DROPOUT, settings.input_dropout)]
            if settings.input_dropout and strategy.kind != "view"
            else [(PLAIN, 0.0)]
        )
    ]
    context = {"data": data, "settings": settings, "masks": masks, "seeds": seeds}
    finished: dict[tuple[int, str], _Done] = {}
    for done in _train_all(tasks, context, settings.jobs):
        finished[done.task.index, done.task.variant] = done
        if progress:
            v, t = done.result, done.task
            missing = f", views missing {v.test_missing}" if v.test_missing else ""
            print(
                f"[{len(finished):>2}/{len(tasks)}] {t.strategy.name}"
                f"{' +input_dropout' if t.variant == DROPOUT else ''}: "
                f"val {v.val}, test {v.test}{missing} ({v.train_seconds:.1f} s/model)",
                flush=True,
            )
    results: list[StrategyResult] = []
    for i, strategy in enumerate(strategies):
        model = finished[i, PLAIN].best.model
        results.append(
            StrategyResult(
                strategy=strategy.name,
                kind=strategy.kind,
                fusion="-" if model.fusion is None else type(model.fusion).__name__,
                matrix=strategy.matrix,
                parameters=count_trainable(model),
                fusion_parameters=count_trainable(model.fusion),
                variants={v: d.result for (j, v), d in finished.items() if j == i},
            )
        )
    best, best_variant = best_fusion(results)
    best_index = next(i for i, s in enumerate(strategies) if s.name == best.strategy)
    best_run = finished[best_index, best_variant].best
    reload = reload_check(best_run.model, data, out / "best_model.pt")
    plot = "results.png"
    write_plot(out / plot, results, title=f"interfuse demo on {data.name}: {len(seeds)} seed(s)")
    total = time.perf_counter() - start
    payload: dict[str, Any] = {
        "data": data.summary(),
        "settings": settings.as_dict(),
        "results": [r.as_dict() for r in results],
        "skipped": dict(skipped or {}),
        "best": {
            "strategy": best.strategy,
            "variant": best_variant,
            "val": best.variants[best_variant].val.mean,
            "test": best.variants[best_variant].test.mean,
            "model": reload["path"],
            "model_test": best_run.test,
        },
        "recommendations": recommendations(results),
        "reload_check": reload,
        "plot": plot,
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    write_json(out / "results.json", payload)
    write_markdown(out / "results.md", payload, results)
    print()
    print(text_table(results, best.strategy))
    print("\nWhich fusion to pick:")
    for line in payload["recommendations"]:
        print(f"  - {line.replace('`', '')}")
    status = "passed" if reload["passed"] else "FAILED"
    print(
        f"\nbest model saved to {out / reload['path']}; reload check {status}: from_config + "
        f"load_state_dict gives {reload['matching_predictions']}/{reload['rows']} identical "
        f"predictions (max |Δ logit| {reload['max_abs_diff']:.1e})"
    )
    print(f"wrote {out / 'results.md'}, results.json, {plot} in {total:.1f} s")
    return payload


def _load(args: argparse.Namespace) -> MultiViewData:
    if args.data is not None:
        return load_csv(args.data, args.target, args.views)
    if args.dataset == "digits":
        return load_digits(4 if args.views is None else args.views)
    if args.views is not None:
        raise DemoDataError("--views applies to --data and --dataset digits, not multifeature")
    return load_multifeature()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``interfuse demo``; returns the exit status (0 ok, 1 failed reload
    check, 2 bad arguments or data)."""
    args = _parser().parse_args(argv)
    if (args.data is None) != (args.target is None):
        return _error("--data and --target go together: --data FILE.csv --target COLUMN")

    def pick(name: str) -> int:
        value = getattr(args, name)
        if value is not None:
            return int(value)
        return int(QUICK[name]) if args.quick else int(getattr(Settings, name))

    settings = Settings(
        epochs=pick("epochs"),
        width=pick("width"),
        seeds=pick("seeds"),
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        head_matrix=args.head_matrix,
        input_dropout=args.input_dropout,
        missing=args.missing,
        threads=args.threads,
        jobs=pick("jobs"),
    )
    for name in ("epochs", "width", "batch_size", "threads", "seeds", "jobs"):
        if getattr(settings, name) <= 0:
            return _error(
                f"--{name.replace('_', '-')} must be positive, got {getattr(settings, name)}"
            )
    if not settings.lr > 0:
        return _error(f"--lr must be positive, got {settings.lr}")
    if not 0 <= settings.input_dropout < 1:
        return _error(f"--input-dropout must be in [0, 1), got {settings.input_dropout}")
    if not 0 <= settings.missing < 1:
        return _error(f"--missing must be in [0, 1), got {settings.missing}")
    try:
        data = _load(args)
        every, skipped = all_strategies(data.view_names)
        strategies = _select(every, args.strategies)
    except (DemoDataError, ValueError) as exc:
        return _error(str(exc))
    out = Path(args.out)
    try:  # before training, so that a bad --out fails at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"--out {out}: cannot create the output folder: {_reason(exc)}")
    models = sum(
        settings.seeds * (1 if s.kind == "view" or not settings.input_dropout else 2)
        for s in strategies
    )
    print(
        f"interfuse demo: {data.name}, {data.rows('train')} train / {data.rows('val')} val / "
        f"{data.rows('test')} test rows, views {dict(zip(data.view_names, data.view_dims))}, "
        f"{data.num_classes} classes; {len(strategies)} strategies, {models} models of "
        f"{settings.epochs} epochs",
        flush=True,
    )
    try:
        payload = run_demo(
            data,
            settings,
            out,
            strategies=strategies,
            skipped=skipped,
            progress=not args.no_progress,
        )
    except OSError as exc:
        return _error(f"--out {out}: cannot write the results: {_reason(exc)}")
    return 0 if payload["reload_check"]["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
