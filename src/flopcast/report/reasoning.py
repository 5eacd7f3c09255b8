"""Plot of the reasoning planner's options: accuracy against cost per problem, one line per
model and strategy (matplotlib is an optional extra, imported only here)."""

from __future__ import annotations

from pathlib import Path

from flopcast.report.plots import _pyplot

_UNITS = {"usd": "$ per problem", "joules": "J per problem", "latency_s": "s per problem",
          "flops": "FLOPs per problem", "kinetics_eflops": "Kinetics eFLOPs per problem"}


def plot_front(rows: list[dict], cost_key: str, path: str | Path) -> Path:
    """Accuracy vs cost (log) of every (model, strategy) over k, the Pareto front on top."""
    from flopcast.workloads.reasoning.plan import pareto_front

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in sorted({(r["model"], r["strategy"]) for r in rows}):
        line = sorted((r for r in rows if (r["model"], r["strategy"]) == name),
                      key=lambda r: r["k"])
        ax.plot([r[cost_key] for r in line], [r["accuracy"] for r in line], ".-", alpha=0.6,
                label=f"{name[0]} {name[1]}")
    front = pareto_front(rows, cost_key)
    ax.plot([r[cost_key] for r in front], [r["accuracy"] for r in front], "k--", lw=1,
            label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(_UNITS[cost_key])
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
