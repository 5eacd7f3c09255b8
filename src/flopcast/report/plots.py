"""Plots of a plan: the Pareto front and the best configuration's memory per stage.

matplotlib is an optional extra (``pip install 'flopcast[plot]'``), imported only here.
"""

from __future__ import annotations

from pathlib import Path

from flopcast.errors import FlopcastError

GIB = 2**30
KINDS = ("weights", "gradients", "optimizer", "activations", "temporary")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FlopcastError("--plot needs matplotlib: pip install 'flopcast[plot]'") from None
    return plt


def plot_plan(answer: dict, path: str | Path) -> Path:
    """Save a two-panel figure (front; memory by kind on first/last stage) to ``path``."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise FlopcastError(f"plot: file must end in .png, .svg or .pdf; got {path.name!r}")
    plt = _pyplot()
    fig, (ax_front, ax_mem) = plt.subplots(1, 2, figsize=(12, 4.5))
    front = answer["pareto"]
    if len(answer["clusters"]) > 1:
        xs = [p["usd_per_million_tokens"] for p in front]
        ys = [p["tokens_per_s"] for p in front]
        ax_front.plot(xs, ys, "o-")
        for p in front:
            ax_front.annotate(f"{p['num_gpus']}×{p['gpu']}",
                              (p["usd_per_million_tokens"], p["tokens_per_s"]), fontsize=7)
        ax_front.set_xlabel("$ per million tokens")
        ax_front.set_ylabel("tokens/s")
        ax_front.set_title("Clusters: speed vs cost (Pareto front)")
    else:
        ax_front.plot([p["memory_headroom_gib"] for p in front],
                      [p["tokens_per_s"] for p in front], "o-")
        ax_front.set_xlabel("memory headroom per GPU (GiB)")
        ax_front.set_ylabel("tokens/s")
        ax_front.set_title("Configurations: speed vs headroom (Pareto front)")
    best = answer["top"][0]
    stages = best["memory_by_stage"]
    bottom = [0.0, 0.0]
    for kind in KINDS:
        values = [stages["first"][kind] / GIB, stages["last"][kind] / GIB]
        ax_mem.bar(["first stage", "last stage"], values, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax_mem.axhline(best["memory"]["capacity"] / GIB, color="k", linestyle="--",
                   label="capacity")
    c = best["config"]
    ax_mem.set_title(f"Best: tp={c['tp']} pp={c['pp']} cp={c['cp']} dp={c['dp']} "
                     f"zero={c['zero_stage']} — memory per GPU")
    ax_mem.set_ylabel("GiB")
    ax_mem.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
