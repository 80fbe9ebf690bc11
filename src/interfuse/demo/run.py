"""``interfuse demo``: train one wide RPN-style model per fusion strategy and compare them."""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.functional import cross_entropy

from interfuse.demo.data import DemoData, DemoDataError, load_csv, load_digits
from interfuse.demo.model import (
    STRATEGIES,
    Strategy,
    WideRPN,
    build_model,
    count_trainable,
    model_from_config,
)
from interfuse.demo.report import (
    StrategyResult,
    text_table,
    write_json,
    write_markdown,
    write_plot,
)
from interfuse.matrices import MATRICES

__all__ = ["Settings", "load_model", "main", "reload_check", "run_demo", "train_one"]


@dataclass
class Settings:
    """Training settings (``--quick`` lowers ``epochs`` and ``width``)."""

    epochs: int = 30
    width: int = 64
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    interdependence: str = "kronecker"
    projection: str = "lowrank"
    threads: int = 1
    seeds: int = 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return dict(self.__dict__)


QUICK = {"epochs": 5, "width": 32}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="interfuse demo",
        description=(
            "Train one RPN-style wide model per fusion strategy (element-wise, concatenation, "
            "projected concatenation with each structured matrix) and compare test accuracy, "
            "parameter count and training time."
        ),
    )
    p.add_argument("--data", metavar="FILE.csv", help="your own CSV table (header row, numeric)")
    p.add_argument("--target", metavar="COLUMN", help="class column of --data")
    p.add_argument(
        "--out", metavar="DIR", default="demo-results", help="output folder (default demo-results)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run: {QUICK['epochs']} epochs, width {QUICK['width']}",
    )
    p.add_argument("--epochs", type=int, help="training epochs (default 30, quick 5)")
    p.add_argument("--width", type=int, help="head width n (default 64, quick 32)")
    p.add_argument("--batch-size", type=int, default=Settings.batch_size, help="default 64")
    p.add_argument(
        "--lr", type=float, default=Settings.lr, help="Adam learning rate (default 0.003)"
    )
    p.add_argument("--seed", type=int, default=Settings.seed, help="seed of the (first) model")
    p.add_argument(
        "--seeds",
        type=int,
        default=Settings.seeds,
        help="models per strategy (seeds --seed, --seed+1, ...): the table then shows the mean "
        "and standard deviation of the test accuracy",
    )
    p.add_argument(
        "--strategies",
        metavar="NAMES",
        help="comma-separated subset of: " + ", ".join(s.name for s in STRATEGIES),
    )
    p.add_argument(
        "--interdependence",
        default=Settings.interdependence,
        choices=sorted(MATRICES),
        metavar="MATRIX",
        help="matrix of the heads' attribute interdependences (default kronecker; one of "
        + ", ".join(sorted(MATRICES))
        + ")",
    )
    p.add_argument(
        "--projection",
        default=Settings.projection,
        choices=sorted(MATRICES),
        metavar="MATRIX",
        help="matrix of the heads' projections (default lowrank, rank 8)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=Settings.threads,
        help="torch CPU threads (small models train fastest on one)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def _pick(value: int | None, name: str, quick: bool) -> int:
    """The command-line value, else the quick or the default setting."""
    if value is not None:
        return value
    return int(QUICK[name]) if quick else int(getattr(Settings, name))


def _error(message: str) -> int:
    print(f"interfuse demo: error: {message}", file=sys.stderr)
    return 2


def _reason(exc: OSError) -> str:
    """``exc`` without the ``[Errno N]`` prefix, naming the path that failed."""
    if isinstance(exc, FileExistsError) and exc.filename:
        return f"{exc.filename} exists and is not a folder"
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def _select(names: str | None) -> list[Strategy]:
    if not names:
        return list(STRATEGIES)
    by_name = {s.name: s for s in STRATEGIES}
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in by_name]
    if unknown or not chosen:
        raise ValueError(f"--strategies: unknown {unknown}; choose from {list(by_name)}")
    return [by_name[n] for n in chosen]


def train_one(
    model: WideRPN,
    data: DemoData,
    settings: Settings,
    *,
    seed: int | None = None,
    desc: str = "",
    progress: bool = True,
) -> tuple[float, float]:
    """Train ``model`` with Adam on minibatches shuffled by ``seed`` (default
    ``settings.seed``); returns ``(seconds, last epoch's mean loss)``."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed if seed is None else seed)
    n = data.x_train.shape[0]
    loss_value = math.nan
    start = time.perf_counter()
    model.train()
    with tqdm(
        range(settings.epochs),
        desc=desc,
        unit="epoch",
        leave=False,
        disable=None if progress else True,  # None: off when stderr is not a terminal
        dynamic_ncols=True,
    ) as bar:
        for _ in bar:
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for i in range(0, n, settings.batch_size):
                idx = order[i : i + settings.batch_size]
                loss = cross_entropy(model(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
            loss_value = total / n
            bar.set_postfix(loss=f"{loss_value:.4f}")
    model.eval()
    return time.perf_counter() - start, loss_value


@torch.no_grad()
def evaluate(model: WideRPN, data: DemoData) -> float:
    """Test accuracy."""
    model.eval()
    pred = model(data.x_test).argmax(-1)
    return float((pred == data.y_test).float().mean())


def load_model(path: str | Path) -> WideRPN:
    """Load a model saved by ``interfuse demo`` (``best_model.pt``: config and
    ``state_dict``), rebuilt with :func:`~interfuse.config.from_config`, in eval mode."""
    saved = torch.load(path, weights_only=True)
    model = model_from_config(saved["config"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def reload_check(model: WideRPN, data: DemoData, path: Path) -> dict[str, Any]:
    """Save ``model`` (config + ``state_dict``) to ``path``, rebuild it with
    :func:`~interfuse.config.from_config`, and compare its test-set logits with the original's."""
    torch.save({"config": model.to_config(), "state_dict": model.state_dict()}, path)
    clone = load_model(path)
    model.eval()
    with torch.no_grad():
        a = model(data.x_test)
        b = clone(data.x_test)
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


def run_demo(
    data: DemoData,
    settings: Settings,
    out: Path,
    *,
    strategies: list[Strategy] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train every strategy on ``data``, write the reports into ``out`` and return the JSON
    payload (also written as ``results.json``)."""
    strategies = strategies or list(STRATEGIES)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, settings.threads))
    results: list[StrategyResult] = []
    models: dict[str, WideRPN] = {}
    seeds = list(range(settings.seed, settings.seed + settings.seeds))
    try:
        for i, strategy in enumerate(strategies, start=1):
            runs: list[tuple[float, float, float, WideRPN]] = []
            for seed in seeds:
                model = build_model(
                    strategy,
                    data.num_features,
                    data.num_classes,
                    width=settings.width,
                    interdependence=settings.interdependence,
                    projection=settings.projection,
                    seed=seed,
                )
                desc = f"[{i:>2}/{len(strategies)}] {strategy.name}"
                if len(seeds) > 1:
                    desc += f" (seed {seed})"
                seconds, loss = train_one(
                    model, data, settings, seed=seed, desc=desc, progress=progress
                )
                acc = evaluate(model, data)
                runs.append((acc, seconds, loss, model))
                print(
                    f"{desc}: test accuracy {100 * acc:.2f}%, {count_trainable(model):,} "
                    f"parameters, {seconds:.1f} s",
                    flush=True,
                )
            accs = torch.tensor([r[0] for r in runs], dtype=torch.float64)
            model = max(runs, key=lambda r: r[0])[3]  # the strategy's best run is kept
            results.append(
                StrategyResult(
                    strategy=strategy.name,
                    family=strategy.family,
                    fusion=type(model.fusion).__name__,
                    matrix=strategy.matrix,
                    accuracy=round(float(accs.mean()), 6),
                    parameters=count_trainable(model),
                    fusion_parameters=count_trainable(model.fusion),
                    train_seconds=round(sum(r[1] for r in runs) / len(runs), 3),
                    final_loss=round(sum(r[2] for r in runs) / len(runs), 6),
                    accuracy_std=round(float(accs.std()), 6) if len(runs) > 1 else 0.0,
                    accuracies=[round(r[0], 6) for r in runs],
                )
            )
            models[strategy.name] = model
        best = max(results, key=lambda r: (r.accuracy, -r.parameters))
        reload = reload_check(models[best.strategy], data, out / "best_model.pt")
    finally:
        torch.set_num_threads(threads)
    plot = "accuracy_vs_params.png"
    write_plot(out / plot, results, title=f"interfuse demo on {data.name}: one model per fusion")
    total = time.perf_counter() - start
    payload: dict[str, Any] = {
        "data": data.summary(),
        "settings": settings.as_dict(),
        "results": [r.as_dict() for r in results],
        "best": {
            "strategy": best.strategy,
            "accuracy": best.accuracy,
            "model": reload["path"],
            "model_accuracy": max(best.accuracies),
        },
        "reload_check": reload,
        "plot": plot,
        "total_seconds": round(total, 3),
    }
    write_json(out / "results.json", payload)
    write_markdown(
        out / "results.md",
        results,
        best=best.strategy,
        data=payload["data"],
        settings=payload["settings"],
        reload=reload,
        plot=plot,
        total_seconds=total,
    )
    print()
    print(text_table(results, best.strategy))
    print(
        f"\nbest: {best.strategy} ({100 * best.accuracy:.2f}% "
        f"{'mean ' if settings.seeds > 1 else ''}test accuracy, {best.parameters:,} parameters);"
        f" its best model is saved to {out / reload['path']}"
    )
    status = "passed" if reload["passed"] else "FAILED"
    print(
        f"reload check {status}: from_config + load_state_dict gives "
        f"{reload['matching_predictions']}/{reload['rows']} identical predictions "
        f"(max |Δ logit| {reload['max_abs_diff']:.1e})"
    )
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / plot} in {total:.1f} s")
    return payload


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``interfuse demo``; returns the exit status (0 ok, 1 failed reload
    check, 2 bad arguments or data)."""
    args = _parser().parse_args(argv)
    if (args.data is None) != (args.target is None):
        return _error("--data and --target go together: --data FILE.csv --target COLUMN")
    settings = Settings(
        epochs=_pick(args.epochs, "epochs", args.quick),
        width=_pick(args.width, "width", args.quick),
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        interdependence=args.interdependence,
        projection=args.projection,
        threads=args.threads,
        seeds=args.seeds,
    )
    for name in ("epochs", "width", "batch_size", "threads", "seeds"):
        if getattr(settings, name) <= 0:
            return _error(
                f"--{name.replace('_', '-')} must be positive, got {getattr(settings, name)}"
            )
    if not settings.lr > 0:
        return _error(f"--lr must be positive, got {settings.lr}")
    try:
        strategies = _select(args.strategies)
        data = load_digits() if args.data is None else load_csv(args.data, args.target)
    except (DemoDataError, ValueError) as exc:
        return _error(str(exc))
    out = Path(args.out)
    try:  # before training, so that a bad --out fails at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"--out {out}: cannot create the output folder: {_reason(exc)}")
    print(
        f"interfuse demo: {data.name}, {data.x_train.shape[0]} train / {data.x_test.shape[0]} "
        f"test rows, {data.num_features} features, {data.num_classes} classes; "
        f"{len(strategies)} strategies x {settings.seeds} seed(s) x {settings.epochs} epochs",
        flush=True,
    )
    try:
        payload = run_demo(
            data, settings, out, strategies=strategies, progress=not args.no_progress
        )
    except OSError as exc:
        return _error(f"--out {out}: cannot write the results: {_reason(exc)}")
    return 0 if payload["reload_check"]["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
