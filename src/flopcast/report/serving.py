"""Pictures and traces of a serving simulation: latency CDFs, the batch-size and KV-use
timeline (matplotlib, optional extra), and a Chrome trace of the iterations (chrome://tracing,
Perfetto: one track per replica)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.report.plots import _pyplot


def plot_serving(res, path: str | Path) -> Path:
    """Save latency CDFs (TTFT, TPOT, end-to-end) and the timeline of running requests and KV
    blocks in use per replica to ``path``."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise FlopcastError(f"plot: {path} should end in .png, .svg or .pdf")
    plt = _pyplot()
    r = res.requests
    arrival, first, finish = (np.asarray(x, dtype=float) for x in
                              (r.arrival, r.first_token, r.finish))
    output = np.asarray(r.output)
    series = {"TTFT": first - arrival, "end-to-end": finish - arrival,
              "TPOT": np.where(output > 1, (finish - first) / np.maximum(output - 1, 1), np.nan)}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, v in series.items():
        v = np.sort(1e3 * v[np.isfinite(v)])
        ax1.plot(v, np.linspace(0, 1, v.size), label=name)
    ax1.set_xscale("log")
    ax1.set(xlabel="latency (ms)", ylabel="share of requests", title="Latency CDF")
    ax1.legend()
    kv_axis = ax2.twinx()
    for k, trace in enumerate(res.trace[:4]):  # the first replicas; more would not read
        if not trace:
            continue
        t, _, running, _, kv = (np.asarray(c, dtype=float) for c in zip(*trace, strict=True))
        line, = ax2.step(t, running, where="post", label=f"replica {k}: running requests")
        kv_axis.step(t, 100 * kv / max(res.kv_capacity_blocks[k], 1), "--", where="post",
                     color=line.get_color(), alpha=0.6)
    ax2.set(xlabel="time (s)", ylabel="running requests (solid)",
            title="Batch and KV cache over time")
    kv_axis.set_ylabel("KV cache in use, % (dashed)")
    kv_axis.set_ylim(0, 105)
    ax2.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_chrome_trace(res, path: str | Path) -> Path:
    """One complete event per iteration (start, duration, running requests, tokens, KV
    blocks), one thread per replica, in the Chrome trace-event format (JSON)."""
    events = []
    for k, trace in enumerate(res.trace):
        for t, end, running, tokens, kv in trace:
            events.append({"name": f"iteration ({tokens} tokens)", "ph": "X", "pid": 0,
                           "tid": k, "ts": 1e6 * t, "dur": 1e6 * (end - t),
                           "args": {"running": running, "tokens": tokens, "kv_blocks": kv}})
    path = Path(path)
    path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))
    return path
