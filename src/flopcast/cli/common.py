"""Shared pieces of the command line: the app, option declarations, parsers, formats."""

from __future__ import annotations

import re
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from flopcast.errors import FlopcastError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Predict LLM training time, memory, cost and energy; check the predictions against "
         "published measurements.",
)
console = Console()

GIB = 2**30


class RecomputeChoice(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class ScheduleChoice(str, Enum):
    one_f_one_b = "1f1b"
    interleaved = "interleaved"
    gpipe = "gpipe"


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    mxfp8 = "mxfp8"
    nvfp4 = "nvfp4"


_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str) -> float:
    """'15T' → 1.5e13, '300B' → 3e11, '1e12' → 1e12."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([kmbgtKMBGT]?)\s*", text)
    if not m:
        raise FlopcastError(f"tokens: expected a number such as 15T, 300B or 1e12; got {text!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2).lower(), 1.0)


def _model(model: str | None, layers, hidden, heads, kv_heads, ffn_hidden, vocab, swiglu):
    from flopcast.catalog import resolve_model
    from flopcast.specs import Model

    shape = [layers, hidden, heads]
    if any(v is not None for v in shape):
        if any(v is None for v in shape):
            raise FlopcastError("shape flags: --layers, --hidden and --heads go together")
        if model is not None:
            raise FlopcastError("model: give --model or shape flags, not both")
        gated = swiglu if swiglu is not None else kv_heads is not None
        return Model(
            name=f"custom-{layers}x{hidden}", num_layers=layers, hidden_size=hidden,
            num_attention_heads=heads, num_kv_heads=kv_heads, ffn_hidden_size=ffn_hidden,
            vocab_size=vocab or 50257, mlp="swiglu" if gated else "gelu",
            norm="rmsnorm" if gated else "layernorm",
            position_embedding="rotary" if gated else "learned",
        )
    if model is None:
        raise FlopcastError("model: give --model (catalog id or config path) or shape flags")
    return resolve_model(model)


# Options shared by `train` and `plan train` (one declaration each).
MODEL_OPT = typer.Option(
    None, "--model", "-m", help="Catalog id (see `flopcast catalog models`), a HF config.json / "
    "model directory, or a flopcast model YAML.")
LAYERS_OPT = typer.Option(None, "--layers", "--num-layers",
                          help="Ad-hoc model: transformer layers.")
HIDDEN_OPT = typer.Option(None, "--hidden", "--hidden-size", help="Ad-hoc model: hidden size.")
HEADS_OPT = typer.Option(None, "--heads", "--num-attention-heads",
                         help="Ad-hoc model: attention heads.")
KV_HEADS_OPT = typer.Option(None, "--kv-heads", "--num-query-groups",
                            help="Ad-hoc model: KV heads (GQA) (default: heads).")
FFN_OPT = typer.Option(None, "--ffn-hidden", "--ffn-hidden-size",
                       help="Ad-hoc model: MLP width (default: 4·hidden).")
VOCAB_OPT = typer.Option(None, "--vocab", "--vocab-size",
                         help="Ad-hoc model: vocabulary (default: 50257).")
SWIGLU_OPT = typer.Option(None, "--swiglu/--gelu", help="Ad-hoc model: gated MLP (default: "
                          "SwiGLU when --kv-heads is given).")
SEQ_OPT = typer.Option(4096, "--seq-len", "--seq-length", help="Tokens per sequence.")
PRECISION_OPT = typer.Option(PrecisionChoice.bf16, "--precision", help="Training number format.")
TOKENS_OPT = typer.Option(None, "--tokens", help="Training budget in tokens, e.g. 15T, 300B, "
                          "1e12 (adds days, GPU-hours, $ and energy).")
EP_OPT = typer.Option(1, "--ep", "--expert-model-parallel-size",
                      help="Expert parallel size (MoE models).")
ETP_OPT = typer.Option(
    None, "--etp", "--expert-tensor-parallel-size", help="Tensor parallel size inside the "
    "expert layers (MoE parallel folding: etp·ep must divide tp·cp·dp) (default: tp).")
CALIBRATION_OPT = typer.Option(None, "--calibration", help="Calibration YAML from `flopcast "
                               "calibrate` (default: the shipped one).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")
#: What every --gpu accepts (help text).
GPU_HELP = ("GPU catalog id (`flopcast catalog gpus`) or a GPU entry file (.yaml, e.g. written "
            "by `flopcast profile`).")


def print_table(title: str, columns: tuple[str, ...], rows) -> None:
    """A rich table: first column left-aligned (names), the rest right-aligned (numbers)."""
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
