"""`flopcast catalog`: the built-in GPUs, models, serving engines, training frameworks and
request-length datasets."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from flopcast.cli.common import app, console
from flopcast.errors import FlopcastError


@app.command()
def catalog(
    kind: str = typer.Argument("gpus", help="gpus, models, engines, frameworks or datasets."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the built-in GPUs, models, serving engines, training frameworks or request-length
    datasets."""
    from flopcast.api.catalog import CatalogKind, CatalogRequest, run_catalog
    from flopcast.api.common import json_of

    kinds = [k.value for k in CatalogKind]
    if kind not in kinds:
        raise FlopcastError(f"catalog: kind must be {', '.join(map(repr, kinds[:-1]))} or "
                            f"{kinds[-1]!r}; got {kind!r}")
    data = json_of(run_catalog(CatalogRequest(kind=kind)))
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console.print(catalog_table(data, console.width))


#: Column headers people read (JSON keeps the keys); columns holding ids people type.
HEADERS = {"bf16_tflops": "BF16 TFLOP/s", "fp8_tflops": "FP8 TFLOP/s", "hbm_gib": "HBM GiB",
           "hbm_tb_s": "HBM TB/s", "usd_per_hour": "$/GPU-h", "max_batch_size": "max batch",
           "max_num_tokens": "max tokens", "kv_block_tokens": "KV block",
           "memory_fraction": "memory share", "memory_of": "of",
           "by_gpu": "by GPU", "releases": "by release", "calibration": "calibration",
           "params_b": "params (B)", "active_params_b": "active (B)",
           "weights_b": "weights B", "grads_b": "grads B", "optimizer_b": "optim. B",
           "input_kind": "input", "input_mean": "mean in", "output_kind": "output",
           "output_mean": "mean out"}
ID_COLUMNS = ("id", "calibration", "input_kind", "output_kind")
#: Columns where None means "the precision recipe's" (framework bytes per parameter).
RECIPE_COLUMNS = ("weights_b", "grads_b", "optimizer_b")
#: Below this width the descriptive name (and alias) columns go (the ids must stay whole).
NAME_MIN_WIDTH = 110
WIDE_ONLY = ("name", "aliases")


def catalog_table(data: list[dict], width: int) -> Table:
    """The catalog as a table whose id columns never wrap or get cut: at narrow widths the
    name column is dropped (`--json` has it), the numbers keep their short headers."""
    keys = [k for k in data[0] if k not in WIDE_ONLY or width >= NAME_MIN_WIDTH]
    table = Table()
    for k in keys:
        cells = [_cell(d[k], k) for d in data]
        if k in ID_COLUMNS:
            table.add_column(HEADERS.get(k, k), no_wrap=True,
                             min_width=max(len(c) for c in cells))
        else:
            table.add_column(HEADERS.get(k, k), justify="left" if k == "name" else "right",
                             overflow="fold")
    for d in data:
        table.add_row(*(_cell(d[k], k) for k in keys))
    return table


def _cell(v, key: str = "") -> str:
    """Numbers with 4 significant digits; a zero peak (no such tensor cores) as '—'; a value
    a framework leaves to the precision recipe (None) as 'recipe', another None as '—'."""
    if v is None:
        return "recipe" if key in RECIPE_COLUMNS else "—"
    if isinstance(v, float):
        return "—" if v == 0 else f"{v:,.4g}"
    return str(v)
