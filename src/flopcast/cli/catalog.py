"""`flopcast catalog`: the built-in GPUs, models and serving engines."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from flopcast.cli.common import (
    GIB,
    app,
    console,
)
from flopcast.errors import FlopcastError


@app.command()
def catalog(
    kind: str = typer.Argument("gpus", help="gpus, models or engines."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the built-in GPUs, models or serving engines."""
    from flopcast.catalog import gpu_ids, load_gpu, load_model, model_ids
    from flopcast.catalog.loader import engine_ids, load_engine

    if kind not in ("gpus", "models", "engines"):
        raise FlopcastError(
            f"catalog: kind must be 'gpus', 'models' or 'engines'; got {kind!r}")
    if kind == "gpus":
        rows = [load_gpu(g) for g in gpu_ids()]
        data = [{"id": g.id, "name": g.name, "bf16_tflops": g.peak_flops.get("bf16", 0) / 1e12,
                 "fp8_tflops": g.peak_flops.get("fp8", 0) / 1e12,
                 "hbm_gib": g.hbm_bytes / GIB, "hbm_tb_s": g.hbm_bandwidth / 1e12,
                 "usd_per_hour": g.price_per_gpu_hour_usd} for g in rows]
    elif kind == "engines":
        data = [{"id": e.id, "name": e.name, "max_batch_size": e.max_batch_size,
                 "max_num_tokens": e.max_num_tokens, "kv_block_tokens": e.kv_block_tokens,
                 "memory_fraction": e.memory_fraction,
                 "calibration": e.calibration_engine or e.id}
                for e in (load_engine(i) for i in engine_ids())]
    else:
        models = [load_model(m) for m in model_ids()]
        data = [{"id": m.name, "params_b": m.num_parameters() / 1e9,
                 "active_params_b": m.num_active_parameters() / 1e9, "layers": m.num_layers,
                 "hidden": m.hidden_size, "experts": m.num_experts} for m in models]
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table()
    for col in data[0]:
        table.add_column(col)
    for d in data:
        table.add_row(*(f"{v:,.4g}" if isinstance(v, float) else str(v) for v in d.values()))
    console.print(table)

