"""Reporting for ``interfuse demo``: the results per strategy, the advice drawn from them, the
terminal table, ``results.md``, ``results.json`` and the two plots."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Stat",
    "StrategyResult",
    "VariantResult",
    "best_fusion",
    "markdown_table",
    "recommendations",
    "text_table",
    "write_json",
    "write_markdown",
    "write_plots",
]

#: The two training variants: without and with the fusion's ``input_dropout``.
PLAIN, DROPOUT = "plain", "input_dropout"


@dataclass
class Stat:
    """Mean and standard deviation (sample, 0 for one value) of one accuracy over the seeds."""

    mean: float
    std: float
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        """The statistics of ``values``."""
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(round(statistics.fmean(values), 6), round(std, 6), [round(v, 6) for v in values])

    def __str__(self) -> str:
        text = f"{100 * self.mean:.2f}"
        return text + (f" ± {100 * self.std:.2f}" if len(self.values) > 1 else "")


@dataclass
class VariantResult:
    """One strategy trained one way, over the seeds."""

    val: Stat
    test: Stat
    val_missing: Stat | None
    test_missing: Stat | None
    train_seconds: float
    epochs: list[int]


@dataclass
class StrategyResult:
    """A strategy's size and its results per variant (``'plain'``, ``'input_dropout'``)."""

    strategy: str
    kind: str
    fusion: str
    matrix: str | None
    parameters: int
    fusion_parameters: int
    variants: dict[str, VariantResult] = field(default_factory=dict)

    @property
    def plain(self) -> VariantResult:
        """The variant trained without input dropout."""
        return self.variants[PLAIN]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return asdict(self)


def _key(r: StrategyResult, variant: str, metric: str) -> tuple[float, int]:
    stat = getattr(r.variants[variant], metric)
    return (stat.mean if stat is not None else -1.0, -r.parameters)


def best_fusion(
    results: list[StrategyResult], metric: str = "val", variants: tuple[str, ...] = (PLAIN,)
) -> tuple[StrategyResult, str]:
    """The fusion strategy and variant with the highest mean ``metric`` (a validation
    accuracy: ``'val'`` or ``'val_missing'``); ties go to fewer parameters."""
    pairs = [(r, v) for r in results if r.kind == "fusion" for v in variants if v in r.variants]
    if not pairs:
        raise ValueError("no fusion strategy was trained")
    return max(pairs, key=lambda p: _key(p[0], p[1], metric))


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def recommendations(results: list[StrategyResult]) -> list[str]:
    """Which fusion to pick for which situation, and why, read off the validation numbers
    (test numbers quoted as evidence)."""
    fusions = [r for r in results if r.kind == "fusion"]
    if not fusions:
        return []
    out: list[str] = []
    best, _ = best_fusion(results)
    b = best.plain
    out.append(
        f"All views present: `{best.strategy}` has the best validation accuracy "
        f"({b.val}%; test {b.test}%, {best.parameters:,} parameters)."
    )
    close = [
        r
        for r in fusions
        if r.plain.val.mean >= b.val.mean - max(b.val.std, 0.0025)
        and r.parameters < best.parameters
    ]
    if close:
        cheap = min(close, key=lambda r: r.parameters)
        out.append(
            f"On a parameter budget: `{cheap.strategy}` is within noise of it on validation "
            f"({cheap.plain.val}%; test {cheap.plain.test}%) with {cheap.parameters:,} "
            f"parameters ({cheap.fusion_parameters:,} in the fusion)."
        )
    views = [r for r in results if r.kind == "view"]
    if views:
        top = max(views, key=lambda r: r.plain.val.mean)
        verdict = "beats" if b.test.mean > top.plain.test.mean else "does not beat"
        out.append(
            f"Fusing pays: `{best.strategy}` {verdict} the best single view, `{top.strategy}` "
            f"(test {top.plain.test}% against {b.test}%)."
        )
    with_missing = [r for r in fusions if r.plain.val_missing is not None]
    if with_missing:
        variants = (PLAIN, DROPOUT) if any(DROPOUT in r.variants for r in fusions) else (PLAIN,)
        robust, variant = best_fusion(with_missing, "val_missing", variants)
        v = robust.variants[variant]
        trained = "trained with input_dropout" if variant == DROPOUT else "trained on all views"
        drops = [r.plain.test.mean - r.plain.test_missing.mean for r in with_missing]  # type: ignore[union-attr]
        out.append(
            f"Views missing at test time: `{robust.strategy}` {trained} keeps the most "
            f"(validation {v.val_missing}%, test {v.test_missing}% against {v.test}% with all "
            f"views; the median fusion trained on all views loses "
            f"{100 * statistics.median(drops):.2f} points)."
        )
        worst = min(with_missing, key=lambda r: _key(r, PLAIN, "val_missing"))
        w = worst.plain
        assert w.test_missing is not None  # with_missing holds multi-view models only
        out.append(
            f"Avoid `{worst.strategy}` when views go missing: test {w.test_missing}% with views "
            f"missing against {w.test}% with all of them."
        )
        gains = [
            r.variants[DROPOUT].val_missing.mean - r.plain.val_missing.mean  # type: ignore[union-attr]
            for r in with_missing
            if DROPOUT in r.variants
        ]
        if gains:
            out.append(
                f"input_dropout changes the validation accuracy with views missing by "
                f"{100 * statistics.median(gains):+.2f} points (median over the fusions; "
                f"{100 * min(gains):+.2f} to {100 * max(gains):+.2f}): train with it when "
                "views will be missing."
            )
    return out


# -- tables ---------------------------------------------------------------------------------------

_COLUMNS = (
    "strategy",
    "fusion",
    "params",
    "fusion params",
    "val acc.",
    "test acc.",
    "test, views missing",
    "+input_dropout: test",
    "+input_dropout: views missing",
)


def _cells(r: StrategyResult) -> list[str]:
    p = r.plain
    d = r.variants.get(DROPOUT)
    return [
        r.strategy,
        r.fusion,
        f"{r.parameters:,}",
        f"{r.fusion_parameters:,}",
        str(p.val),
        str(p.test),
        str(p.test_missing) if p.test_missing else "-",
        str(d.test) if d else "-",
        str(d.test_missing) if d and d.test_missing else "-",
    ]


def text_table(results: list[StrategyResult], best: str | None = None) -> str:
    """A fixed-width table for the terminal (accuracies in %); the best is marked ``*``."""
    rows = [list(_COLUMNS)] + [_cells(r) for r in results]
    for row, r in zip(rows[1:], results):
        if r.strategy == best:
            row[0] += " *"
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i >= 2 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(rows[0]), rule, *(fmt(row) for row in rows[1:])])


def markdown_table(results: list[StrategyResult], best: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (accuracies in %); the best strategy is in bold."""
    lines = [
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(_COLUMNS) - 2)) + "|",
    ]
    for r in results:
        cells = _cells(r)
        cells[0] = f"`{cells[0]}`"
        if r.strategy == best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON."""
    path.write_text(json.dumps(payload, indent=2) + "\n")


def write_markdown(path: Path, payload: dict[str, Any], results: list[StrategyResult]) -> None:
    """Write ``results.md``: data, settings, advice, the table, the plots and the checks."""
    data, settings, reload = payload["data"], payload["settings"], payload["reload_check"]
    views = ", ".join(f"{k} ({v})" for k, v in data["views"].items())
    seeds = settings["seeds"]
    lines = [
        "# interfuse demo results",
        "",
        f"Data: **{data['name']}**, {data['train_rows']} training, {data['val_rows']} "
        f"validation and {data['test_rows']} test rows, {data['classes']} classes; views "
        f"(width): {views}.",
        "",
        "Settings: "
        + ", ".join(f"{k}={v}" for k, v in settings.items() if not isinstance(v, (dict, list))),
        "",
        "## Which fusion to pick",
        "",
        *(f"- {line}" for line in payload["recommendations"]),
        "",
        "## All strategies",
        "",
        markdown_table(results, payload["best"]["strategy"]),
        "",
        f"Accuracies in %, mean ± standard deviation over {seeds} seed(s); each model's epoch is "
        "chosen on the validation rows, and so is the best strategy (bold). *Views missing*: "
        f"each view absent with probability {settings['missing']} per test row, never all "
        "(the same masks for every model); the fusion gets the mask. *+input_dropout*: the "
        f"same strategy trained with the fusion's `input_dropout={settings['input_dropout']}`. "
        "Baselines: `view:NAME` is one view alone; `early_concat` concatenates the raw views "
        "(absent ones zero-filled) into one head.",
        "",
    ]
    if payload.get("skipped"):
        lines += [
            "Registered fusions not compared: "
            + "; ".join(f"`{k}` ({v})" for k, v in payload["skipped"].items())
            + ".",
            "",
        ]
    lines += [
        f"Total time {payload['total_seconds']:.1f} s. Reload check: "
        + ("**passed**" if reload["passed"] else "**FAILED**")
        + f": the saved config and state_dict rebuilt with `from_config` give "
        f"{reload['matching_predictions']}/{reload['rows']} identical test predictions "
        f"(max |Δ logit| = {reload['max_abs_diff']:.2e}).",
        "",
        *(f"![{name}]({name})\n" for name in payload["plots"]),
    ]
    path.write_text("\n".join(lines))


# -- plots ----------------------------------------------------------------------------------------

_KIND_MARKER = {"fusion": "o", "view": "s", "early_concat": "D"}


def write_plots(out: Path, results: list[StrategyResult], *, title: str) -> list[str]:
    """Write ``accuracy_vs_params.png`` (test accuracy with all views against trainable
    parameters, log scale; one legend entry per strategy beside the axes) and
    ``missing_views.png`` (test accuracy of every multi-view strategy with all views, with
    views missing, and with views missing after training with input dropout: one labelled
    row per strategy); return their file names."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    names = ["accuracy_vs_params.png", "missing_views.png"]
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=120)
    colors = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    for i, r in enumerate(results):
        p = r.plain
        ax.errorbar(
            r.parameters,
            100 * p.test.mean,
            yerr=100 * p.test.std,
            fmt=_KIND_MARKER.get(r.kind, "o"),
            color=colors[i % 20],
            markeredgecolor="black",
            markeredgewidth=0.5,
            markersize=7,
            capsize=3,
            label=f"{r.strategy}: {p.test}%",
        )
    ax.set_xscale("log")
    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(thousands)
    ax.xaxis.set_minor_formatter(thousands)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("test accuracy, all views (%)")
    ax.set_title(f"{title}: accuracy against size (circle: fusion, square: one view)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        ncol=1 if len(results) <= 24 else 2,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(out / names[0])
    plt.close(fig)

    multi = [r for r in results if r.plain.test_missing is not None]
    multi.sort(key=lambda r: r.plain.test_missing.mean if r.plain.test_missing else 0.0)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(multi) + 1.6), dpi=120)
    bars = [
        ("all views", lambda r: r.plain.test, "#9e9e9e"),
        ("views missing", lambda r: r.plain.test_missing, "#e6550d"),
        (
            "views missing, trained with input_dropout",
            lambda r: r.variants[DROPOUT].test_missing if DROPOUT in r.variants else None,
            "#3182bd",
        ),
    ]
    height = 0.8 / len(bars)
    for j, (label, get, color) in enumerate(bars):
        ys, xs, errs = [], [], []
        for i, r in enumerate(multi):
            stat = get(r)
            if stat is not None:
                ys.append(i + (j - 1) * height)
                xs.append(100 * stat.mean)
                errs.append(100 * stat.std)
        ax.barh(ys, xs, height=height, xerr=errs, color=color, label=label, capsize=2)
    ax.set_yticks(range(len(multi)), [r.strategy for r in multi], fontsize=8)
    lows = [100 * s.mean for r in multi for s in (r.plain.test_missing, r.plain.test) if s]
    ax.set_xlim(max(0.0, min(lows, default=0.0) - 5), 100)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(f"{title}: accuracy when views go missing", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(out / names[1])
    plt.close(fig)
    return names
