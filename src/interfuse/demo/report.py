"""Reporting for ``interfuse demo``: the results per strategy, the advice drawn from them, the
terminal table, ``results.md``, ``results.json`` and the figure."""

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
    "write_plot",
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StrategyResult:
        """The inverse of :meth:`as_dict` (a record of ``results.json``)."""

        def stat(s: dict[str, Any] | None) -> Stat | None:
            return None if s is None else Stat(**s)

        variants = {
            name: VariantResult(
                val=Stat(**f["val"]),
                test=Stat(**f["test"]),
                val_missing=stat(f["val_missing"]),
                test_missing=stat(f["test_missing"]),
                train_seconds=f["train_seconds"],
                epochs=f["epochs"],
            )
            for name, f in d["variants"].items()
        }
        return cls(**{**d, "variants": variants})


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
            f"views; a typical fusion trained on all views loses "
            f"{100 * statistics.median(drops):.2f} points, the median over the fusions)."
        )

        def loss(r: StrategyResult) -> float:
            return r.plain.val.mean - r.plain.val_missing.mean  # type: ignore[union-attr]

        steady = sorted(with_missing, key=loss)[:3]
        out.append(
            "Trained on all views, the fusions that lose the least when views go missing are "
            + ", ".join(f"`{r.strategy}` ({-100 * loss(r):+.2f})" for r in steady)
            + " (change in validation accuracy, points)."
        )
        worst = min(with_missing, key=lambda r: _key(r, PLAIN, "val_missing"))
        w = worst.plain
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
            median = statistics.median(gains)
            # under a point, the gain is within the noise of a few hundred validation rows
            verdict = (
                "train with it when views will be missing"
                if median > 0.01
                else "on this data it makes little difference"
            )
            out.append(
                f"input_dropout changes the validation accuracy with views missing by "
                f"{100 * median:+.2f} points (median over the fusions; "
                f"{100 * min(gains):+.2f} to {100 * max(gains):+.2f}): {verdict}."
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
    """Write ``results.md``: data, settings, advice, the table, the figure and the checks."""
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
        f"Accuracies in %, mean ± standard deviation over {seeds} seed(s). Each model's epoch is "
        "chosen on the validation rows (with all views; with views missing for the models "
        "trained with input dropout), and so is the best strategy (bold). *Views missing*: "
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
            + "; ".join(f"`{k}`: {v}" for k, v in payload["skipped"].items())
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
        f"![accuracy with all views, with views missing, and size, per strategy]"
        f"({payload['plot']})",
        "",
    ]
    path.write_text("\n".join(lines))


# -- plots ----------------------------------------------------------------------------------------

_KIND_COLOR = {"fusion": "#3182bd", "view": "#9e9e9e", "early_concat": "#756bb1"}


def write_plot(path: Path, results: list[StrategyResult], *, title: str) -> None:
    """Write the study as one figure of three panels sharing a labelled row per strategy
    (fusions by validation accuracy, then the baselines): test accuracy with all views; test
    accuracy with views missing, trained without and with input dropout; trainable parameters
    (log scale, the fusion's own in a darker shade). Accuracies are means with bars of one
    standard deviation; a value left of a panel's range is written at its edge."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fusions = sorted((r for r in results if r.kind == "fusion"), key=lambda r: r.plain.val.mean)
    rows = [r for r in results if r.kind != "fusion"][::-1] + fusions  # best fusion on top
    ys = list(range(len(rows)))
    fig, (acc, miss, size) = plt.subplots(
        1,
        3,
        sharey=True,
        figsize=(13, 0.3 * len(rows) + 1.8),
        dpi=120,
        gridspec_kw={"width_ratios": [1.1, 1.3, 0.9]},
    )

    def panel(ax: Any, series: list[tuple[str, str, Any]], xlabel: str) -> None:
        # the range fits the multi-view models that do not collapse (above 50%); a value
        # below it is written at the edge
        values = [
            100 * s.mean
            for _, _, get in series
            for r in rows
            if r.kind != "view" and (s := get(r)) is not None and s.mean >= 0.5
        ]
        low = max(0.0, min(values, default=90.0) - 1.5)
        offsets = [0.0] if len(series) == 1 else [-0.17, 0.17]
        for (label, color, get), dy in zip(series, offsets):
            points = [(y, get(r)) for y, r in zip(ys, rows) if get(r) is not None]
            for y, stat in points:
                if 100 * stat.mean < low:
                    ax.annotate(
                        f"◂ {100 * stat.mean:.1f}",
                        (low, y + dy),
                        xytext=(2, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=7,
                        color=color,
                    )
            ax.errorbar(
                [100 * s.mean for _, s in points],
                [y + dy for y, _ in points],
                xerr=[100 * s.std for _, s in points],
                fmt="o",
                color=color,
                markersize=4,
                capsize=2,
                label=label,
            )
        ax.set_xlim(low, 100)
        ax.set_xlabel(xlabel)
        ax.grid(True, axis="x", alpha=0.3)

    panel(acc, [("all views", "#3182bd", lambda r: r.plain.test)], "test accuracy, all views (%)")
    panel(
        miss,
        [
            ("trained on all views", "#e6550d", lambda r: r.plain.test_missing),
            (
                "trained with input_dropout",
                "#31a354",
                lambda r: r.variants[DROPOUT].test_missing if DROPOUT in r.variants else None,
            ),
        ],
        "test accuracy, views missing (%)",
    )
    miss.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    colors = [_KIND_COLOR.get(r.kind, "#3182bd") for r in rows]
    size.barh(ys, [r.parameters for r in rows], color=colors, alpha=0.45, height=0.6)
    size.barh(ys, [max(r.fusion_parameters, 0) for r in rows], color=colors, height=0.6)
    size.set_xscale("log")
    size.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")
    )
    size.set_xlabel("trainable parameters (dark: the fusion's)")
    size.grid(True, axis="x", alpha=0.3)
    acc.set_yticks(ys, [r.strategy for r in rows], fontsize=8)
    acc.set_ylim(-0.7, len(rows) - 0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
