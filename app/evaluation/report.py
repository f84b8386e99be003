"""Write an evaluation result as JSON, a Markdown table and PNG bar charts a person can look at.

Every evaluation returns {system: {metric: value}, "_ci": ..., "_meta": ...}; rows are systems,
columns are the metrics that are numbers in [0, 1] (counts and timings stay in the JSON).
"""

from __future__ import annotations

import json
from pathlib import Path


def systems(result: dict) -> dict[str, dict]:
    return {k: v for k, v in result.items() if not k.startswith("_") and isinstance(v, dict)}


def rate_metrics(result: dict, only: list[str] | None = None) -> list[str]:
    keys: list[str] = []
    for m in systems(result).values():
        for k, v in m.items():
            if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 \
                    and not k.endswith(("seconds", "_s", "questions", "errors", "per_question")):
                keys.append(k)
    return [k for k in keys if not only or k in only]


def markdown(result: dict, title: str) -> str:
    sys_ = systems(result)
    cols = rate_metrics(result)
    lines = [f"### {title}", "", "| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in sys_.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(c)) for c in cols) + " |")
    for pair, metrics in result.get("_ci", {}).items():
        for metric, ci in metrics.items():
            lines.append("")
            lines.append(f"{pair} {metric}: {ci['diff']:+.4f} (95% CI {ci['ci95_low']:+.4f} .. {ci['ci95_high']:+.4f})")
    for name, m in sys_.items():
        if m.get("rules"):
            metrics = [k for k in next(iter(m["rules"].values())) if k != "fired"]
            lines += ["", f"{name}: each check-stage rule on / off (same run; counts over the questions)", "",
                      "| rule | fired | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
            for rule, row in m["rules"].items():
                lines.append(f"| {rule} | {row['fired']} | " +
                             " | ".join(f"{row[k]['on']:g} / {row[k]['off']:g}" for k in metrics) + " |")
    meta = result.get("_meta")
    if meta:
        lines += ["", "`" + json.dumps(meta, ensure_ascii=False) + "`"]
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:  # noqa: ANN001
    return "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def plot(result: dict, title: str, path: Path, only: list[str] | None = None) -> Path:
    """Grouped bar chart: one group per metric, one bar per system, error bars none (CIs are in the table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys_ = systems(result)
    cols = rate_metrics(result, only)
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 1.1 * len(cols) * max(1, len(sys_)) / 2 + 2)), 4.2), dpi=110)
    width = 0.8 / max(1, len(sys_))
    for i, (name, m) in enumerate(sys_.items()):
        xs = [j + i * width for j in range(len(cols))]
        vals = [float(m.get(c) or 0.0) for c in cols]
        bars = ax.bar(xs, vals, width, label=name)
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks([j + width * (len(sys_) - 1) / 2 for j in range(len(cols))], cols, rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=min(4, len(sys_)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_outputs(result: dict, title: str, json_out: Path | None = None, md_out: Path | None = None,
                  plot_out: Path | None = None, plot_metrics: list[str] | None = None) -> list[Path]:
    written = []
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        written.append(json_out)
    if md_out:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(markdown(result, title), encoding="utf-8")
        written.append(md_out)
    if plot_out:
        written.append(plot(result, title, plot_out, plot_metrics))
    return written
