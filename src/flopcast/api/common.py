"""What every request shares: bounded numbers, the ad-hoc model option group, the choices,
the one-line messages, and the checks on an answer.

Imports only pydantic (and the standard library) at module level, so that the CLI's help and
``import flopcast`` stay fast; catalogs and workloads are imported by the functions that use
them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Annotated, TypeVar, get_type_hints

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from flopcast.errors import FlopcastError, echo

#: Largest integer any option takes (int32, as Megatron-LM and PyTorch take sizes): beyond it
#: products of sizes overflow and a 309-digit count cannot even become a float.
MAX_INT = 2**31 - 1



def not_a_bool(value):
    """Refuse true/false where a number is meant: pydantic's lax mode reads JSON true as 1
    ({"gpus": true} was priced as one GPU)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    return value


#: An integer option: whole numbers within ±MAX_INT (lower bounds stay with the specs).
Int = Annotated[int, BeforeValidator(not_a_bool), Field(ge=-MAX_INT, le=MAX_INT)]
#: A random seed: NumPy's generators take 0 … 2**32 - 1 (a negative seed is refused).
Seed = Annotated[int, BeforeValidator(not_a_bool), Field(ge=0, le=2**32 - 1)]
#: A float option: finite (no nan, no inf; ranges stay with the specs).
Finite = Annotated[float, BeforeValidator(not_a_bool), Field(allow_inf_nan=False)]
#: A latency bound in ms: finite and above zero.
LatencyMs = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: An engine release ("0.4.1", "v0.16.0", "0.7a"): its leading numbers pick what it ran
#: (Engine.at_version).
Release = Annotated[str, Field(pattern=r"^v?\d+(\.\d+)*[0-9A-Za-z.+-]*$", max_length=40)]


class Request(BaseModel):
    """Base of every typed request: unknown fields are refused (a misspelt option must not
    silently fall back to its default); field names are the CLI's options in snake_case."""

    model_config = ConfigDict(extra="forbid")


#: Where a request's warnings go: what is allowed but doubtful (the CLI prints them on
#: stderr, the web API sends them in a header; the result alone is the answer).
Warn = Callable[[str], None]


def ignore(message: str) -> None:
    """The default warning sink: drops the warning."""


def json_of(result: BaseModel):
    """A result as the CLI's --json prints it and the API answers: what the workload gave,
    keys it did not give (optional ones, e.g. a deadline's verdict) left out."""
    return result.model_dump(mode="json", exclude_unset=True)


def fields_of(dataclass: type) -> dict:
    """A dataclass's fields as ``pydantic.create_model`` arguments (all required), so that a
    result type is declared once, by the workload's own dataclass."""
    return {name: (hint, ...) for name, hint in get_type_hints(dataclass).items()}


def short(value) -> str:
    """A value for a message: long ones cut in the middle ('99999999…99999999 (309 chars)'),
    characters that are not printable (a newline) escaped, so a message stays one line."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= 24 else f"{text[:8]}…{text[-8:]} ({len(text)} characters)"


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

    @classmethod
    def _missing_(cls, value):
        """Other spellings of a recipe (FP8, bfloat16), as precision.format_name reads them."""
        from flopcast.specs.precision import format_name

        name = format_name(str(value))
        return next((m for m in cls if m.value == name), None)


class ObjectiveChoice(str, Enum):
    time = "time"
    cost = "cost"
    energy = "energy"


M = TypeVar("M", bound=BaseModel)


def validated_update(obj: M, option: str, field: str, value) -> M:
    """``obj`` with ``field`` set to ``value`` through the same pydantic validation as the API
    (``model_copy`` would skip it); a refusal names the option, the value and what is
    allowed."""
    try:
        return type(obj).model_validate({**obj.model_dump(), field: value})
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise FlopcastError(f"{option}: {msg}; got {short(value)}") from None


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


_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


#: Weight GEMMs that get LoRA adapters when --lora-targets is not given (NeMo's default).
DEFAULT_LORA_TARGETS = "qkv"


def lora_targets_of(text: str | None, rank: int | None, warn: Warn) -> tuple[str, ...]:
    """--lora-targets "qkv, out" → ("qkv", "out") (each name checked by the training spec);
    None → the default. Targets without --lora-rank mean nothing (every weight trains): said
    once through ``warn``, not silently dropped."""
    if text is not None and rank is None:
        warn(f"--lora-targets {text}: ignored; it applies only with --lora-rank (without it "
             "every weight trains)")
    return tuple(t.strip() for t in (DEFAULT_LORA_TARGETS if text is None else text).split(","))


def parse_count(text: str) -> float:
    """'15T' → 1.5e13, '300B' → 3e11, '1e12' → 1e12; refuses 0 and what overflows (1e400)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([kmbgtKMBGT]?)\s*", text)
    allowed = "a positive finite number such as 15T, 300B or 1e12"
    if not m:
        raise FlopcastError(f"--tokens: expected {allowed}; got {short(text)!r}")
    value = float(m.group(1)) * _SUFFIX.get(m.group(2).lower(), 1.0)
    if not math.isfinite(value) or value <= 0:
        raise FlopcastError(f"--tokens: expected {allowed}; got {short(text)!r}")
    return value


#: The command-line option behind a spec field, for messages about the specs a request builds
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
                     "num_gpus": "--gpus", "num_requests": "--num-requests"},
    "PlanRequest": {"seq_len": "--seq-len", "global_batch": "--global-batch",
                    "top": "--top", "deadline_days": "--deadline-days", "tokens": "--tokens"},
}
OPTIONS["TrainingJob"] |= OPTIONS["Parallelism"] | OPTIONS["System"]
#: The latency bounds of `serve` and `serve plan` (their requests' own range checks).
OPTIONS["ServeRequest"] = OPTIONS["ServePlanRequest"] = {
    name: "--" + name.replace("_", "-") for name in ("slo_ttft_p99", "slo_tpot_p99",
                                                     "slo_itl_p99")}
#: Ad-hoc model flags (used where ModelFlags builds the Model from them, not for model files).
SHAPE_OPTIONS = {"num_layers": "--layers", "hidden_size": "--hidden",
                 "num_attention_heads": "--heads", "num_kv_heads": "--kv-heads",
                 "ffn_hidden_size": "--ffn-hidden", "vocab_size": "--vocab"}
OPTIONS["InferenceJob"] |= OPTIONS["System"] | {"tp": "--tp", "pp": "--pp", "ep": "--ep"}
#: The load a serve request builds (workload.ArrivalSpec).
OPTIONS["ArrivalSpec"] = {"rate": "--request-rate", "cv": "--burstiness",
                          "concurrency": "--concurrency"}


def error_line(err: dict, options: dict[str, str]) -> str:
    """One pydantic error as '--pp (parallelism.pp): Input should be greater than or equal to
    1; got 0': the option (where one set the field), the field path, what is allowed and the
    value given."""
    loc = ".".join(str(x) for x in err["loc"])
    msg = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
    if not loc:
        return msg
    option = options.get(str(err["loc"][-1]))
    value = err.get("input")
    got = (f"; got {short(value)}" if isinstance(value, (int, float, str))
           and not isinstance(value, bool) and not msg.startswith(short(value) + " ") else "")
    return f"{option} ({loc}): {msg}{got}" if option else f"{loc}: {msg}{got}"


def validation_line(exc: ValidationError, options: dict[str, str] | None = None) -> str:
    """The first error of ``exc`` as one line (error_line), with the options of the spec or
    request that raised it unless ``options`` are given."""
    if options is None:
        options = OPTIONS.get(exc.title, {})
    return error_line(exc.errors()[0], options)


def engine_of(name: str, version: str | None, expert_dispatch: str | None = None):
    """The engine entry ``name`` as release ``version`` ran it, with its MoE token exchange
    replaced by ``expert_dispatch`` when given (e.g. DeepEP's all-to-all on an engine whose
    default gathers)."""
    from flopcast.catalog.loader import load_engine

    engine = load_engine(name).at_version(version)
    if expert_dispatch is None:
        return engine
    return engine.model_copy(update={"expert_dispatch": expert_dispatch})


def engine_version_note(engine: str, version: str | None) -> str | None:
    """A warning when --engine-version cannot change anything: the engine's catalog entry
    has no release-dependent values (Engine.release_changes)."""
    from flopcast.catalog.loader import load_engine

    if version is None or load_engine(engine).release_changes:
        return None
    return (f"--engine-version {version}: the {engine} entry has no release-dependent values, "
            "so every release is priced alike")


def one_line(exc: BaseException) -> str:
    """The one line a user error becomes, on the command line and in the API's 422 answers."""
    if isinstance(exc, ValidationError):
        return validation_line(exc)
    if isinstance(exc, OSError) and not isinstance(exc, FlopcastError):
        # a path the OS refuses (too long, unreadable, a full disk)
        name = echo(str(exc.filename)) if exc.filename else ""
        return f"{name}{': ' if name else ''}{exc.strerror or ' '.join(str(exc).split())}"
    return " ".join(str(exc).split())


class ModelFlags(Request):
    """The model: a catalog id, a HF config.json / model directory or a flopcast model YAML
    (``model``), or an ad-hoc shape (``layers``, ``hidden``, ``heads`` and optionally
    ``kv_heads``, ``ffn_hidden``, ``vocab``, ``swiglu``)."""

    model: str | None = None
    layers: Int | None = None
    hidden: Int | None = None
    heads: Int | None = None
    kv_heads: Int | None = None
    ffn_hidden: Int | None = None
    vocab: Int | None = None
    swiglu: bool | None = None

    def resolve(self, model: str | None = None):
        """The Model these flags name (``model`` replaces the field, for one of a list)."""
        return resolve_model_flags(self.model if model is None else model, self)


def resolve_model_flags(model: str | None, f: ModelFlags):
    """A catalog/config model, or one built from the shape flags (GPT-2-like gelu/layernorm/
    learned positions, or Llama-like swiglu/rmsnorm/rotary when gated); one line otherwise."""
    from flopcast.catalog import resolve_model
    from flopcast.specs import Model

    shape = [f.layers, f.hidden, f.heads]
    if any(v is not None for v in shape):
        if any(v is None for v in shape):
            raise FlopcastError("shape flags: --layers, --hidden and --heads go together")
        if model is not None:
            raise FlopcastError("model: give --model or shape flags, not both")
        gated = f.swiglu if f.swiglu is not None else f.kv_heads is not None
        # `vocab if … is not None`: `vocab or 50257` turned --vocab 0 into GPT-2's vocabulary.
        try:
            return Model(
                name=f"custom-{f.layers}x{f.hidden}", num_layers=f.layers,
                hidden_size=f.hidden, num_attention_heads=f.heads, num_kv_heads=f.kv_heads,
                ffn_hidden_size=f.ffn_hidden, vocab_size=50257 if f.vocab is None else f.vocab,
                mlp="swiglu" if gated else "gelu", norm="rmsnorm" if gated else "layernorm",
                position_embedding="rotary" if gated else "learned",
            )
        except ValidationError as exc:
            raise FlopcastError(validation_line(exc, SHAPE_OPTIONS)) from None
    if model is None:
        raise FlopcastError("model: give --model (catalog id or config path) or shape flags")
    return resolve_model(model)


def partial_node(num_gpus: int, per_node: int, gpu: str | None = None) -> str | None:
    """The warning for a GPU count that leaves the last node partial (12 GPUs on nodes of
    8), or None: train and plan price communication as if every node were full."""
    if num_gpus <= per_node or num_gpus % per_node == 0:
        return None
    where = f" on {gpu}" if gpu else ""
    return (f"--gpus {num_gpus}{where}: {num_gpus // per_node} full node(s) of {per_node} and "
            f"one of {num_gpus % per_node}; communication is priced as if every node were full")


def beyond_context(model, tokens: int, option: str) -> str | None:
    """A warning when a sequence is longer than the model's context, else None. Not refused:
    training past the context is what long-context extension does (the cost model needs no
    position table), and an ad-hoc or custom model may well be meant for it; the user should
    know, though."""
    context = model.max_position_embeddings
    if "max_position_embeddings" in model.model_fields_set and tokens > context:
        return (f"{option} {tokens:,} exceeds {model.name}'s context of {context:,} tokens; "
                "the estimate assumes the model is extended to it (e.g. RoPE scaling)")
    return None
