"""Reporting for ``interfuse demo``: the terminal table, ``results.md``, ``results.json`` and
the accuracy-versus-parameters plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "StrategyResult",
    "markdown_table",
    "text_table",
    "write_json",
    "write_markdown",
    "write_plot",
]


@dataclass
class StrategyResult:
    """The outcome of training one model."""

    strategy: str
    family: str
    fusion: str
    matrix: str | None
    accuracy: float
    parameters: int
    fusion_parameters: int
    train_seconds: float
    final_loss: float
    accuracy_std: float = 0.0
    accuracies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return asdict(self)


_COLUMNS = ("strategy", "fusion", "matrix", "test acc.", "params", "fusion params", "train s")


def _cells(r: StrategyResult) -> list[str]:
    return [
        r.strategy,
        r.fusion,
        r.matrix or "-",
        f"{100 * r.accuracy:.2f}%"
        + (f" ± {100 * r.accuracy_std:.2f}" if len(r.accuracies) > 1 else ""),
        f"{r.parameters:,}",
        f"{r.fusion_parameters:,}",
        f"{r.train_seconds:.1f}",
    ]


def text_table(results: list[StrategyResult], best: str | None = None) -> str:
    """A fixed-width table for the terminal; the best strategy is marked with ``*``."""
    rows = [list(_COLUMNS)] + [_cells(r) for r in results]
    for row, r in zip(rows[1:], results):
        if r.strategy == best:
            row[0] += " *"
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    right = {3, 4, 5, 6}

    def fmt(row: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(rows[0]), rule, *(fmt(row) for row in rows[1:])])


def markdown_table(results: list[StrategyResult], best: str | None = None) -> str:
    """A GitHub-flavoured Markdown table; the best strategy is in bold."""
    lines = [
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join(["---", "---", "---", "---:", "---:", "---:", "---:"]) + "|",
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


def write_markdown(
    path: Path,
    results: list[StrategyResult],
    *,
    best: str,
    data: dict[str, Any],
    settings: dict[str, Any],
    reload: dict[str, Any],
    plot: str | None,
    total_seconds: float,
) -> None:
    """Write ``results.md``: the dataset, the settings, the table, the plot and the checks."""
    lines = [
        "# interfuse demo results",
        "",
        f"Data: **{data['name']}**, {data['train_rows']} training and {data['test_rows']} test "
        f"rows, {data['features']} features, {data['classes']} classes.",
        "",
        "Settings: "
        + ", ".join(f"{k}={v}" for k, v in settings.items() if not isinstance(v, (dict, list))),
        "",
        markdown_table(results, best),
        "",
        *(
            [
                f"Test accuracy: mean ± standard deviation over {len(results[0].accuracies)} "
                "seeds; params and time per model.",
                "",
            ]
            if results and len(results[0].accuracies) > 1
            else []
        ),
        f"Best: `{best}` (highest test accuracy; ties go to fewer parameters). "
        f"Total time {total_seconds:.1f} s.",
        "",
        "Reload check: "
        + ("**passed**" if reload["passed"] else "**FAILED**")
        + f" — the saved config and state_dict rebuilt with `from_config` give "
        f"{reload['matching_predictions']}/{reload['rows']} identical predictions "
        f"(max |Δ logit| = {reload['max_abs_diff']:.2e}).",
    ]
    if plot:
        lines += ["", f"![accuracy against parameter count]({plot})"]
    path.write_text("\n".join(lines) + "\n")


_FAMILY_MARKER = {"element-wise": "o", "concatenation": "s", "projected concatenation": "D"}


def write_plot(path: Path, results: list[StrategyResult], *, title: str) -> None:
    """Scatter test accuracy against trainable parameters (log scale).

    One colour per strategy and one marker shape per family (circle: element-wise, square:
    concatenation, diamond: projected concatenation), named in a legend beside the axes so
    that close points stay readable.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    colors = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    for i, r in enumerate(results):
        # points that (nearly) coincide with earlier ones are drawn nested, as smaller markers
        earlier = sum(
            abs(q.parameters - r.parameters) <= 0.01 * r.parameters
            and abs(q.accuracy - r.accuracy) < 5e-4
            for q in results[:i]
        )
        if len(r.accuracies) > 1:
            ax.errorbar(
                r.parameters,
                100 * r.accuracy,
                yerr=100 * r.accuracy_std,
                color="gray",
                alpha=0.6,
                capsize=3,
                zorder=2,
            )
        ax.scatter(
            r.parameters,
            100 * r.accuracy,
            color=colors[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20],
            marker=_FAMILY_MARKER.get(r.family, "o"),
            s=80 / (1 + 1.5 * earlier),
            edgecolors="black",
            linewidths=0.5,
            label=f"{r.strategy}: {100 * r.accuracy:.2f}%, {r.parameters:,}",
            zorder=3 + earlier,
        )
    ax.set_xscale("log")
    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(thousands)
    ax.xaxis.set_minor_formatter(thousands)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="strategy: accuracy, parameters",
        title_fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
