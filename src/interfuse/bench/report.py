"""Writing ``bench-results.json``, ``bench-results.md`` and ``bench.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}" if x < 10 else f"{x:.0f}"


def _mem(result: dict[str, Any], variant: str) -> str:
    mem = result.get("memory", {}).get(variant)
    if not mem or mem.get("x_output") is None:
        return "–"
    return f"{mem['x_output']:.2f}"


def _met(t: dict[str, Any] | None) -> str:
    if not t or t.get("ratio") is None:
        return "–"
    return "yes" if t["met"] else "**no**"


def _figure(t: dict[str, Any]) -> str:
    if t.get("speedup") is not None:
        return f"{t['speedup']:.2f}× faster"
    return _fmt(t.get("ratio"))


def missed(payload: dict[str, Any]) -> list[str]:
    """One line per target missed in the run, with its figure: every one of them."""
    return [
        f"{r['id']}: {t['text']}, measured {_figure(t)}"
        for r in payload["results"]
        for t in r.get("targets", [])
        if t.get("met") is False
    ]


def unjudged(payload: dict[str, Any]) -> list[str]:
    """Targets that could not be judged (a compared variant did not run)."""
    return [
        f"{r['id']}: {t['text']}"
        for r in payload["results"]
        for t in r.get("targets", [])
        if t.get("met") is None
    ]


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")


def _v(result: dict[str, Any], name: str, key: str = "ratio") -> float | None:
    entry = result["variants"].get(name)
    return None if entry is None else entry.get(key)


def markdown(payload: dict[str, Any]) -> str:
    meta = payload["meta"]
    lines = [
        f"# interfuse bench — {meta['mode']} run",
        "",
        f"{meta['date']} · {meta['machine']} · torch {meta['torch']} · "
        f"{meta['threads']} threads · malloc: {meta['malloc']} · {meta['seconds']:.0f} s",
        "",
        "Ratios are medians over interleaved rounds of per-round time ratios (see "
        "`interfuse.bench.timing`); memory is the peak RSS a call adds, in multiples of its "
        "output's size, measured in a fresh process (`interfuse.bench.memory`).",
        "",
    ]
    results = payload["results"]
    judged = [(r, t) for r in results for t in r.get("targets", []) if t.get("ratio") is not None]
    if judged:
        compiled = any("compiled_ratio" in t for _, t in judged)
        missed_n = sum(1 for _, t in judged if t["met"] is False)
        lines += [
            "## Targets",
            "",
            f"{len(judged) - missed_n} of {len(judged)} met"
            + (f"; **{missed_n} missed** (listed first)." if missed_n else "."),
            "",
            "| case | target | measured | met |" + (" under torch.compile |" if compiled else ""),
            "|---|---|---|---|" + ("---|" if compiled else ""),
        ]
        for r, t in sorted(judged, key=lambda rt: rt[1]["met"] is not False):
            row = f"| `{r['id']}` | {t['text']} | {_figure(t)} | {_met(t)} |"
            if compiled:
                row += f" {_fmt(t.get('compiled_ratio'))} |"
            lines.append(row)
        lines.append("")
    sm = [r for r in results if r["group"] == "small"]
    if sm:
        lines += [
            "## Small sizes",
            "",
            "Issue 16's grid: `modern` is the interfuse module, `plain` the `nn.Module` a user "
            "would write instead (`torch.stack(xs).sum(0)`, `.amax(0)`, `nn.Linear` on "
            "`torch.cat(xs, -1)`, `x @ A`, ...), `kernel` the `interfuse.functional` call, "
            "`tinybig` the `interfuse.tinybig` function and `original` tinyBIG 0.2.1's own for "
            "the same call, `pyg` PyTorch Geometric's `MultiAggregation` combine step. Ratios "
            "are time ÷ time (lower is better for the first name).",
            "",
            "| subject | k | shape | phase | threads | plain µs | modern ÷ plain | "
            "kernel ÷ plain | tinybig ÷ original | modern ÷ pyg |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sm:
            p = r["params"]
            rt = r["ratios"]
            plain_ms = _v(r, "plain", "median_ms")
            plain_us = None if plain_ms is None else plain_ms * 1e3
            lines.append(
                f"| {r['name']} | {p['k']} | {p['rows']}×{p['width']} | {p['phase']} | "
                f"{p.get('threads', '–')} | {_fmt(plain_us, 1)} | "
                f"{_fmt(rt.get('modern/plain'))} | {_fmt(rt.get('kernel/plain'))} | "
                f"{_fmt(rt.get('tinybig/original'))} | {_fmt(rt.get('modern/pyg'))} |"
            )
        lines.append("")
    ew = [r for r in results if r["group"] in ("elementwise", "masked")]
    if ew:
        lines += [
            "## Element-wise fusions",
            "",
            "`bandwidth` = min(`floor`, `reference`): `floor` is `S.sum(0)` on the stacked "
            "inputs (forward+backward: `tensordot(w, S)` when each input needs its own "
            "gradient); `reference` is the matching native reduction (`S.amax(0)`, "
            "`vector_norm(S, p, 0)`, ...). `naive` stacks then reduces. Time ratios are "
            "interfuse ÷ other, except `naive`, `modern`, `tinybig`, `pyg` (other ÷ interfuse; "
            "`pyg` is PyTorch Geometric's `MultiAggregation` combine step). `compiled`: the "
            "kernel under `torch.compile` (inductor) ÷ bandwidth, where measured.",
            "",
            "| fusion | mask | dtype | k | shape | phase | interfuse ms | ÷ bandwidth | "
            "÷ reference | compiled | naive × | modern × | tinybig × | pyg × | mem (× out) | "
            "naive mem |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in ew:
            p = r["params"]
            rt = r["ratios"]
            lines.append(
                f"| {r['name']} | {'rows' if p.get('masked') else '–'} | {p['dtype']} | "
                f"{p['k']} | {p['rows']}×{p['width']} | {p['phase']} | "
                f"{_ms(_v(r, 'interfuse', 'median_ms'))} | {_fmt(rt.get('interfuse/bandwidth'))} | "
                f"{_fmt(rt.get('interfuse/reference'))} | {_fmt(rt.get('compiled/bandwidth'))} | "
                f"{_fmt(rt.get('naive/interfuse'))} | "
                f"{_fmt(rt.get('modern/interfuse'))} | {_fmt(rt.get('tinybig/interfuse'))} | "
                f"{_fmt(rt.get('pyg/interfuse'))} | {_mem(r, 'interfuse')} | {_mem(r, 'naive')} |"
            )
        lines.append("")
    st = [r for r in results if r["group"] == "structured"]
    if st:
        lines += [
            "## Structured matrices",
            "",
            "`naive` builds W then multiplies; `reference` is `F.linear` with a prebuilt dense "
            "W (the GEMM reference). Speed-ups are other ÷ interfuse.",
            "",
            "| matrix | in→out | batch | phase | interfuse ms | vs build-then-multiply | "
            "vs dense F.linear | modern × | tinybig × | allocates n×D | mem (× out) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in st:
            p = r["params"]
            rt = r["ratios"]
            alloc = r.get("checks", {}).get("allocates_nxD")
            lines.append(
                f"| {r['name']} | {p['in_features']}→{p['out_features']} | {p['batch']} | "
                f"{p['phase']} | {_ms(_v(r, 'interfuse', 'median_ms'))} | "
                f"{_fmt(rt.get('naive/interfuse'))}× | {_fmt(rt.get('reference/interfuse'))}× | "
                f"{_fmt(rt.get('modern/interfuse'))} | {_fmt(rt.get('tinybig/interfuse'))} | "
                f"{'–' if alloc is None else ('**yes**' if alloc else 'no')} | "
                f"{_mem(r, 'interfuse')} |"
            )
        lines.append("")
    pj = [r for r in results if r["group"] == "projection"]
    if pj:
        lines += [
            "## Dense projected concatenation",
            "",
            "`pyg` is PyTorch Geometric's `MultiAggregation(mode='proj')` combine step (other "
            "÷ interfuse).",
            "",
            "| pieces | out | batch | phase | interfuse ms | ÷ F.linear on cat | cat+linear ÷ "
            "F.linear | modern × | tinybig × | pyg × | mem (× out) | cat+linear mem |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in pj:
            p = r["params"]
            rt = r["ratios"]
            lines.append(
                f"| {len(p['widths'])}×{p['widths'][0]} | {p['out_features']} | {p['batch']} | "
                f"{p['phase']} | {_ms(_v(r, 'interfuse', 'median_ms'))} | "
                f"{_fmt(rt.get('interfuse/reference'))} | {_fmt(rt.get('naive/reference'))} | "
                f"{_fmt(rt.get('modern/interfuse'))} | {_fmt(rt.get('tinybig/interfuse'))} | "
                f"{_fmt(rt.get('pyg/interfuse'))} | {_mem(r, 'interfuse')} | {_mem(r, 'naive')} |"
            )
        lines.append("")
    cx = payload.get("crossover", [])
    if cx:
        lines += [
            "## Factored vs materialized (crossover)",
            "",
            "`materialized` builds W and runs one GEMM; `dense layer` is `F.linear` with a "
            "prebuilt W of the same shape (what the structure replaces): `dense ÷ structured` "
            "above 1 means the structured matrix (its faster path) beats the dense layer. "
            "`auto` is what `mode='auto'` (`StructuredMatrix.use_factored`) picks.",
            "",
            "| matrix | in→out | phase | rows | factored ms | materialized ms | dense layer ms | "
            "dense ÷ structured | faster path | auto picks | auto's loss |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in cx:
            lines.append(
                f"| {c['name']} | {c['in_features']}→{c['out_features']} | {c['phase']} | "
                f"{c['rows']} | {_ms(c['factored_ms'])} | {_ms(c['dense_ms'])} | "
                f"{_ms(c['dense_layer_ms'])} | {_fmt(c['dense_layer_over_structured'])} | "
                f"{c['faster']} | {c['auto']} | {_fmt(c['auto_loss'])}× |"
            )
        summary = payload.get("crossover_summary")
        if summary:
            lines += ["", summary]
        lines.append("")
    checks = payload.get("face_kernels")
    if checks:
        lines += [
            "## Both faces run the same kernels",
            "",
            "| case | modern calls | tinybig calls | same |",
            "|---|---|---|---|",
        ]
        for row in checks:
            lines.append(
                f"| `{row['id']}` | {', '.join(row['modern'])} | {', '.join(row['tinybig'])} | "
                f"{'yes' if row['same'] else '**no**'} |"
            )
        lines.append("")
    notes = payload.get("notes", [])
    if notes:
        lines += ["## Notes", ""] + [f"* {n}" for n in notes] + [""]
    return "\n".join(lines)


def _plot_small(ax: Any, small: list[dict[str, Any]]) -> None:
    """Modern ÷ plain module at the small sizes (1 thread), one bar per subject and case."""
    small = [r for r in small if r["params"].get("threads", 1) == 1]
    if not small:
        ax.set_axis_off()
        return

    def key_of(r: dict[str, Any]) -> tuple[int, int, int, str]:
        p = r["params"]
        return p["k"], p["rows"], p["width"], p["phase"]

    names = list(dict.fromkeys(r["name"] for r in small))
    keys = list(dict.fromkeys(key_of(r) for r in small))
    width = 0.8 / max(1, len(keys))
    for j, key in enumerate(keys):
        values = []
        for name in names:
            row = next((r for r in small if r["name"] == name and key_of(r) == key), None)
            values.append(row["ratios"].get("modern/plain", 0) if row else 0)
        k, rows, cols, phase = key
        ax.bar(
            [i + (j - (len(keys) - 1) / 2) * width for i in range(len(names))],
            values,
            width,
            label=f"k={k}, {rows}×{cols}, {'fwd' if phase == 'forward' else 'fwd+bwd'}",
        )
    ax.axhline(1.5, color="k", ls="--", lw=1, label="target 1.5×")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_ylabel("interfuse module time ÷ plain nn.Module time")
    ax.set_title("small sizes, 1 thread", pad=34)
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)


def plot(path: Path, payload: dict[str, Any]) -> bool:
    """Write the summary figure; ``False`` (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    results = payload["results"]
    fig, axes = plt.subplots(1, 4, figsize=(25, 5.4))
    ax = axes[0]
    head = [
        r
        for r in results
        if r["group"] in ("elementwise", "masked") and r["params"].get("headline")
    ]
    labels, fwd, fb, nfwd = [], [], [], []
    names = []
    for r in head:
        key = r["name"] + (" (mask)" if r["params"].get("masked") else "")
        if key not in names:
            names.append(key)
    for key in names:
        rows = {
            r["params"]["phase"]: r
            for r in head
            if r["name"] + (" (mask)" if r["params"].get("masked") else "") == key
        }
        labels.append(key)
        fwd.append(rows.get("forward", {}).get("ratios", {}).get("interfuse/bandwidth"))
        fb.append(rows.get("forward+backward", {}).get("ratios", {}).get("interfuse/bandwidth"))
        nv = rows.get("forward", {}).get("ratios", {}).get("naive/interfuse")
        ib = rows.get("forward", {}).get("ratios", {}).get("interfuse/bandwidth")
        nfwd.append(None if nv is None or ib is None else nv * ib)
    xs = list(range(len(labels)))
    width = 0.27

    def bars(offset: float, values: list[float | None], label: str, color: str) -> None:
        ax.bar(
            [x + offset for x in xs],
            [v if v is not None else 0 for v in values],
            width,
            label=label,
            color=color,
        )

    if labels:
        bars(-width, fwd, "interfuse forward", "#1f77b4")
        bars(0, fb, "interfuse fwd+bwd", "#2ca02c")
        bars(width, nfwd, "naive (stack) forward", "#d62728")
        ax.axhline(1.3, color="k", ls="--", lw=1, label="target 1.3× (masked 1.5×)")
        ax.axhline(1.5, color="k", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_ylabel("time ÷ bandwidth reference")
        ax.set_title("element-wise fusions, k=8, 4096×1024 fp32")
        ax.legend(fontsize=8)
    ax = axes[1]
    st = [
        r
        for r in results
        if r["group"] == "structured"
        and (r["params"]["in_features"], r["params"]["out_features"]) == (4096, 1024)
    ]
    if st:
        snames = list(dict.fromkeys(r["name"] for r in st))
        for i, phase in enumerate(("forward", "forward+backward")):
            vals = []
            for n in snames:
                row = next(
                    (r for r in st if r["name"] == n and r["params"]["phase"] == phase), None
                )
                vals.append(row["ratios"].get("naive/interfuse", 0) if row else 0)
            ax.bar([j + (i - 0.5) * 0.4 for j in range(len(snames))], vals, 0.4, label=phase)
        ax.axhline(5, color="k", ls="--", lw=1, label="target 5×")
        ax.set_yscale("log")
        ax.set_xticks(range(len(snames)))
        ax.set_xticklabels(snames, rotation=30, ha="right")
        ax.set_ylabel("build-then-multiply time ÷ interfuse time")
        p = st[0]["params"]
        ax.set_title(f"structured {p['in_features']}→{p['out_features']}, batch {p['batch']}")
        ax.legend(fontsize=8)
    ax = axes[2]
    cx = [c for c in payload.get("crossover", []) if c["phase"] == "forward"]
    if cx:
        # One colour per matrix, one line style per size: 15 lines stay readable.
        names = list(dict.fromkeys(c["name"] for c in cx))
        sizes = list(dict.fromkeys((c["in_features"], c["out_features"]) for c in cx))
        colors = plt.get_cmap("tab10")
        styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
        for key in dict.fromkeys((c["name"], c["in_features"], c["out_features"]) for c in cx):
            pts = sorted(
                (c["rows"], c["dense_ms"] / c["factored_ms"])
                for c in cx
                if (c["name"], c["in_features"], c["out_features"]) == key
            )
            line, marker = styles[sizes.index(key[1:]) % len(styles)]
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                linestyle=line,
                marker=marker,
                markersize=4,
                color=colors(names.index(key[0]) % 10),
                label=f"{key[0]} {key[1]}→{key[2]}",
            )
        ax.axhline(1, color="k", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel("materialized time ÷ factored time (>1: factored wins)")
        ax.set_title("crossover, eval (no grad)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _plot_small(axes[3], [r for r in results if r["group"] == "small"])
    meta = payload["meta"]
    fig.suptitle(
        f"interfuse bench ({meta['mode']}) — {meta['date']} — {meta['machine']}", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
