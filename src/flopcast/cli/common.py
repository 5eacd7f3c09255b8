"""Shared pieces of the command line: the app, option declarations, parsers, formats."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from enum import Enum
from typing import TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flopcast.errors import FlopcastError

# rich_markup_mode=None: plain click help. Rich help ate "[ray]" in "pip install
# 'flopcast[ray]'" as markup and cut long option names ("--tp,--tensor-mo…") at 80 columns.
app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Predict LLM training time, memory, cost and energy; check the predictions against "
         "published measurements.",
)
console = Console()

GIB = 2**30
#: Largest integer any option takes (int32, as Megatron-LM and PyTorch take sizes): beyond it
#: products of sizes overflow and a 309-digit count cannot even become a float.
MAX_INT = 2**31 - 1


def package_version() -> str:
    """The installed distribution's version (importlib.metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flopcast")
    except PackageNotFoundError:
        from flopcast import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        print(f"flopcast {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Predict LLM training time, memory, cost and energy; check the predictions against
    published measurements."""


def finite_float(text: str) -> float:
    """Parser of float options: refuses nan, inf and literals that overflow (1e400), so that no
    non-finite number reaches a spec, a table or JSON. Ranges stay with the specs' validators."""
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{_short(text)!r} is not a number; give e.g. 2.5") from None
    if not math.isfinite(x):
        raise typer.BadParameter(f"{_short(text)!r} is not a finite number; give e.g. 2.5")
    return x


def bounded_int(text: str) -> int:
    """Parser of integer options: whole numbers within ±MAX_INT, so a 309-digit count is one
    line instead of an OverflowError or an endless search. Lower bounds stay with the specs."""
    try:
        x = int(str(text).strip())
    except ValueError:
        raise typer.BadParameter(f"{_short(text)!r} is not a whole number") from None
    if abs(x) > MAX_INT:
        raise typer.BadParameter(f"{_short(text)} is out of range; at most {MAX_INT:,}")
    return x


def int_option(default, *names: str, **kwargs):
    """typer.Option for an integer: parsed by bounded_int."""
    return typer.Option(default, *names, parser=bounded_int, **kwargs)


def float_option(default, *names: str, **kwargs):
    """typer.Option for a float: parsed by finite_float."""
    return typer.Option(default, *names, parser=finite_float, **kwargs)


def _short(value) -> str:
    """A value for a message: long ones cut in the middle ('99999999…99999999 (309 chars)')."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:8]}…{text[-8:]} ({len(text)} characters)"


def plural(n: int, word: str) -> str:
    """'1 micro-batch', '8 micro-batches', '2 replicas'."""
    if n == 1:
        return f"1 {word}"
    suffix = "es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s"
    return f"{n:,} {word}{suffix}"


M = TypeVar("M", bound=BaseModel)


def validated_update(obj: M, option: str, field: str, value) -> M:
    """``obj`` with ``field`` set to ``value`` through the same pydantic validation as the API
    (``model_copy`` would skip it); a refusal names the option, the value and what is
    allowed."""
    try:
        return type(obj).model_validate({**obj.model_dump(), field: value})
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise FlopcastError(f"{option}: {msg}; got {_short(value)}") from None


def ensure_finite(data, what: str) -> None:
    """Refuse an answer with a nan or an infinity anywhere in it (sizes so large the
    arithmetic overflowed): strict JSON has no such numbers and no table should show them."""
    bad = _first_non_finite(data, what)
    if bad is not None:
        raise FlopcastError(f"{bad} is not a finite number: the sizes given are too large "
                            "for this estimate; use smaller values")


def _first_non_finite(data, path: str) -> str | None:
    if isinstance(data, float):
        return None if math.isfinite(data) else path
    if isinstance(data, dict):
        items: Iterable = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _first_non_finite(value, f"{path}.{key}")
        if found is not None:
            return found
    return None


def warn(message: str) -> None:
    """One warning line on stderr (the result still goes to stdout)."""
    print(f"warning: {message}", file=sys.stderr)


def warn_beyond_context(model, tokens: int, option: str) -> None:
    """Warn when a sequence is longer than the model's context. Not refused: training past the
    context is what long-context extension does (the cost model needs no position table), and
    an ad-hoc or custom model may well be meant for it; the user should know, though."""
    context = model.max_position_embeddings
    if "max_position_embeddings" in model.model_fields_set and tokens > context:
        warn(f"{option} {tokens:,} exceeds {model.name}'s context of {context:,} tokens; the "
             "estimate assumes the model is extended to it (e.g. RoPE scaling)")


def expected_error_lines(*errors: dict) -> None:
    """The expected-error statements (flopcast.accuracy) under a result, dimmed."""
    for e in errors:
        console.print(f"[dim]{escape(e['text'])}[/]", highlight=False)


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
    """'15T' → 1.5e13, '300B' → 3e11, '1e12' → 1e12; refuses 0 and what overflows (1e400)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([kmbgtKMBGT]?)\s*", text)
    allowed = "a positive finite number such as 15T, 300B or 1e12"
    if not m:
        raise FlopcastError(f"--tokens: expected {allowed}; got {_short(text)!r}")
    value = float(m.group(1)) * _SUFFIX.get(m.group(2).lower(), 1.0)
    if not math.isfinite(value) or value <= 0:
        raise FlopcastError(f"--tokens: expected {allowed}; got {_short(text)!r}")
    return value


#: The command-line option behind a spec field, for messages about the specs the CLI builds
#: (keyed by the spec's class, so a field of a model file is not blamed on a flag).
OPTIONS = {
    "System": {"num_gpus": "--gpus", "gpus_per_node": "--gpus-per-node",
               "network_bandwidth": "--network-gbps"},
    "Parallelism": {"tp": "--tp", "pp": "--pp", "vp": "--vp", "cp": "--cp", "ep": "--ep",
                    "etp": "--etp", "dp": "--dp", "zero_stage": "--zero",
                    "micro_batch": "--micro-batch", "global_batch": "--global-batch"},
    "TrainingJob": {"seq_len": "--seq-len", "tokens": "--tokens", "num_gpus": "--gpus",
                    "attention_backend": "--attention-backend"},
    "InferenceJob": {"tp": "--tp", "pp": "--pp", "ep": "--ep", "input_len": "--input-len",
                     "output_len": "--output-len", "batch": "--batch/--concurrency",
                     "num_gpus": "--gpus"},
    "PlanRequest": {"seq_len": "--seq-len", "global_batch": "--global-batch",
                    "top": "--top", "deadline_days": "--deadline-days", "tokens": "--tokens"},
}
OPTIONS["TrainingJob"] |= OPTIONS["Parallelism"] | OPTIONS["System"]
#: Ad-hoc model flags (used where _model builds the Model from them, not for model files).
SHAPE_OPTIONS = {"num_layers": "--layers", "hidden_size": "--hidden",
                 "num_attention_heads": "--heads", "num_kv_heads": "--kv-heads",
                 "ffn_hidden_size": "--ffn-hidden", "vocab_size": "--vocab"}
OPTIONS["InferenceJob"] |= OPTIONS["System"] | {"tp": "--tp", "pp": "--pp", "ep": "--ep"}


def validation_line(exc: ValidationError, options: dict[str, str] | None = None) -> str:
    """'--pp (parallelism.pp): Input should be greater than or equal to 1; got 0': the option
    (where the CLI set the field), the field path, what is allowed and the value given."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:
        return msg
    options = OPTIONS.get(exc.title, {}) if options is None else options
    option = options.get(str(err["loc"][-1]))
    value = err.get("input")
    got = (f"; got {_short(value)}" if isinstance(value, (int, float, str))
           and not isinstance(value, bool) else "")
    return f"{option} ({loc}): {msg}{got}" if option else f"{loc}: {msg}{got}"


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
        # `vocab if … is not None`: `vocab or 50257` turned --vocab 0 into GPT-2's vocabulary.
        try:
            return Model(
                name=f"custom-{layers}x{hidden}", num_layers=layers, hidden_size=hidden,
                num_attention_heads=heads, num_kv_heads=kv_heads, ffn_hidden_size=ffn_hidden,
                vocab_size=50257 if vocab is None else vocab, mlp="swiglu" if gated else "gelu",
                norm="rmsnorm" if gated else "layernorm",
                position_embedding="rotary" if gated else "learned",
            )
        except ValidationError as exc:
            raise FlopcastError(validation_line(exc, SHAPE_OPTIONS)) from None
    if model is None:
        raise FlopcastError("model: give --model (catalog id or config path) or shape flags")
    return resolve_model(model)


# Options shared by `train` and `plan train` (one declaration each).
MODEL_OPT = typer.Option(
    None, "--model", "-m", help="Catalog id (see `flopcast catalog models`), a HF config.json / "
    "model directory, or a flopcast model YAML.")
LAYERS_OPT = int_option(None, "--layers", "--num-layers",
                          help="Ad-hoc model: transformer layers.")
HIDDEN_OPT = int_option(None, "--hidden", "--hidden-size", help="Ad-hoc model: hidden size.")
HEADS_OPT = int_option(None, "--heads", "--num-attention-heads",
                         help="Ad-hoc model: attention heads.")
KV_HEADS_OPT = int_option(None, "--kv-heads", "--num-query-groups",
                            help="Ad-hoc model: KV heads (GQA) (default: heads).")
FFN_OPT = int_option(None, "--ffn-hidden", "--ffn-hidden-size",
                       help="Ad-hoc model: MLP width (default: 4·hidden).")
VOCAB_OPT = int_option(None, "--vocab", "--vocab-size",
                         help="Ad-hoc model: vocabulary (default: 50257).")
SWIGLU_OPT = typer.Option(None, "--swiglu/--gelu", help="Ad-hoc model: gated MLP (default: "
                          "SwiGLU when --kv-heads is given).")
SEQ_OPT = int_option(4096, "--seq-len", "--seq-length", help="Tokens per sequence.")
PRECISION_OPT = typer.Option(PrecisionChoice.bf16, "--precision", help="Training number format.")
TOKENS_OPT = typer.Option(None, "--tokens", help="Training budget in tokens, e.g. 15T, 300B, "
                          "1e12 (adds days, GPU-hours, $ and energy).")
EP_OPT = int_option(1, "--ep", "--expert-model-parallel-size",
                      help="Expert parallel size (MoE models).")
ETP_OPT = int_option(
    None, "--etp", "--expert-tensor-parallel-size", help="Tensor parallel size inside the "
    "expert layers (MoE parallel folding: etp·ep must divide tp·cp·dp) (default: tp).")
CALIBRATION_OPT = typer.Option(None, "--calibration", help="Calibration YAML from `flopcast "
                               "calibrate` (default: the shipped one).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")
FRAMEWORK_OPT = typer.Option(
    "megatron", "--framework", help="Training framework whose memory layout and kernels the "
    "run uses: megatron, hf-transformers, fsdp (torchtitan), deepspeed (`flopcast catalog "
    "frameworks`).")
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


#: Readable names of the step-time parts (JSON keeps the keys).
STEP_NAMES = {
    "compute": "compute", "recompute": "  of which recomputation",
    "tp_comm": "TP communication", "cp_comm": "CP communication",
    "ep_comm": "EP communication (all-to-all)", "pp_comm": "PP communication",
    "bubble": "pipeline bubble", "dp_comm_exposed": "DP communication (exposed)",
    "optimizer": "optimizer step", "overhead": "fixed overhead", "gemm": "GEMMs",
    "attention": "attention", "elementwise": "element-wise kernels", "lm_head": "LM head",
}
#: Readable names of the memory kinds.
MEMORY_NAMES = {
    "optimizer": "optimizer states", "temporary": "temporary buffers",
    "kv_cache_in_use": "KV cache in use", "kv_cache_budget": "KV cache budget",
}


def step_name(key: str) -> str:
    """'dp_comm_exposed_s' → 'DP communication (exposed)'; unknown keys with spaces."""
    key = key.removesuffix("_s")
    return STEP_NAMES.get(key, key.replace("_", " "))


def memory_name(key: str) -> str:
    """'kv_cache_in_use' → 'KV cache in use'; unknown keys with spaces."""
    return MEMORY_NAMES.get(key, key.replace("_", " "))
