"""`flopcast catalog`: the built-in GPUs, models, serving engines and training frameworks."""

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
    kind: str = typer.Argument("gpus", help="gpus, models, engines or frameworks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the built-in GPUs, models, serving engines or training frameworks."""
    from flopcast.catalog import gpu_ids, load_gpu, load_model, model_ids
    from flopcast.catalog.loader import engine_ids, load_engine

    if kind not in ("gpus", "models", "engines", "frameworks"):
        raise FlopcastError(f"catalog: kind must be 'gpus', 'models', 'engines' or "
                            f"'frameworks'; got {kind!r}")
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
    elif kind == "frameworks":
        data = _frameworks()
    else:
        models = [load_model(m) for m in model_ids()]
        data = [{"id": m.name, "params_b": m.num_parameters() / 1e9,
                 "active_params_b": m.num_active_parameters() / 1e9, "layers": m.num_layers,
                 "hidden": m.hidden_size, "experts": m.num_experts} for m in models]
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console.print(catalog_table(data, console.width))


def _frameworks() -> list[dict]:
    """One row per training framework profile: what it keeps per parameter (None = the
    precision recipe's) and how it runs."""
    from flopcast.catalog import framework_ids, load_framework

    rows = []
    for f in (load_framework(i) for i in framework_ids()):
        rows.append({"id": f.id, "name": f.name, "aliases": ", ".join(f.aliases),
                     "weights_b": f.parameter_bytes, "grads_b": f.gradient_bytes,
                     "optimizer_b": f.optimizer_bytes, "autocast": f.weight_casts == "autocast",
                     "residual": f.residual_dtype, "fused": f.elementwise is None})
    return rows


#: Column headers people read (JSON keeps the keys); columns holding ids people type.
HEADERS = {"bf16_tflops": "BF16 TFLOP/s", "fp8_tflops": "FP8 TFLOP/s", "hbm_gib": "HBM GiB",
           "hbm_tb_s": "HBM TB/s", "usd_per_hour": "$/GPU-h", "max_batch_size": "max batch",
           "max_num_tokens": "max tokens", "kv_block_tokens": "KV block",
           "memory_fraction": "memory share", "calibration": "calibration",
           "params_b": "params (B)", "active_params_b": "active (B)",
           "weights_b": "weights B", "grads_b": "grads B", "optimizer_b": "optim. B"}
ID_COLUMNS = ("id", "calibration")
#: Below this width the descriptive name (and alias) columns go (the ids must stay whole).
NAME_MIN_WIDTH = 110
WIDE_ONLY = ("name", "aliases")


def catalog_table(data: list[dict], width: int) -> Table:
    """The catalog as a table whose id columns never wrap or get cut: at narrow widths the
    name column is dropped (`--json` has it), the numbers keep their short headers."""
    keys = [k for k in data[0] if k not in WIDE_ONLY or width >= NAME_MIN_WIDTH]
    table = Table()
    for k in keys:
        cells = [_cell(d[k]) for d in data]
        if k in ID_COLUMNS:
            table.add_column(HEADERS.get(k, k), no_wrap=True,
                             min_width=max(len(c) for c in cells))
        else:
            table.add_column(HEADERS.get(k, k), justify="left" if k == "name" else "right",
                             overflow="fold")
    for d in data:
        table.add_row(*(_cell(d[k]) for k in keys))
    return table


def _cell(v) -> str:
    """Numbers with 4 significant digits; a zero peak (no such tensor cores) as '—'; a value
    a framework leaves to the precision recipe (None) as 'recipe'."""
    if v is None:
        return "recipe"
    if isinstance(v, float):
        return "—" if v == 0 else f"{v:,.4g}"
    return str(v)
