"""Read catalog YAML files into specs, converting people's units to SI on the way in."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from flopcast.errors import FlopcastError, validation_message
from flopcast.files import (
    load_json_mapping,
    load_shipped_yaml,
    load_yaml_mapping,
    path_exists,
    read_text,
)
from flopcast.specs.base import name_key
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.engine import Engine
from flopcast.specs.framework import Framework
from flopcast.specs.gpu import GPU
from flopcast.specs.host import Host
from flopcast.specs.kernels import KernelProfile
from flopcast.specs.model import Model

CATALOG_DIR = Path(__file__).parent
GPU_DIR = CATALOG_DIR / "gpus"
MODEL_DIR = CATALOG_DIR / "models"
ENGINE_DIR = CATALOG_DIR / "engines"
FRAMEWORK_DIR = CATALOG_DIR / "frameworks"
#: The framework a training job uses when none is named (flopcast's reference counting).
DEFAULT_FRAMEWORK = "megatron"
CALIBRATION_FILE = CATALOG_DIR.parent / "calibration" / "default.yaml"
INFERENCE_CALIBRATION_FILE = CATALOG_DIR.parent / "calibration" / "inference.yaml"
KERNEL_PRIORS_DIR = CATALOG_DIR / "kernels"
KERNEL_CALIBRATION_FILE = CATALOG_DIR.parent / "calibration" / "kernels.yaml"
#: Kernel fits made by `flopcast calibrate` on the published kernel timings of
#: calibration/published/ (kernels.yaml is fitted on kernels.csv, whose rows are one H100's):
#: Blackwell from B200 GEMM timings (kernels-blackwell.yaml), Ampere from A100 GEMM,
#: attention, copy and power timings (kernels-ampere.yaml), and Hopper's engine attention
#: kernels (FlashAttention-3, TensorRT-LLM's context FMHA), which kernels.csv does not time,
#: from the engines' own H100 timings (kernels-hopper-engines.yaml).
EXTRA_KERNEL_CALIBRATION_FILES = tuple(CATALOG_DIR.parent / "calibration" / name for name in (
    "kernels-blackwell.yaml", "kernels-ampere.yaml", "kernels-hopper-engines.yaml"))

GIB = 2**30
GB = 1e9


#: Longest catalog id accepted; longer strings are refused before touching the file system
#: (which would answer "File name too long").
MAX_ID_CHARS = 200


def _is_catalog_id(name: str) -> bool:
    """Whether ``name`` can be a catalog file stem (no path separators, NUL or over-long)."""
    return 0 < len(name) <= MAX_ID_CHARS and not any(c in name for c in "/\\\x00")


def gpu_ids() -> list[str]:
    return sorted(p.stem for p in GPU_DIR.glob("*.yaml"))


def model_ids() -> list[str]:
    return sorted(p.stem for p in MODEL_DIR.glob("*.yaml"))


def _calibration_families(path: str | Path | None, shipped: Path) -> dict:
    """The ``families`` mapping of a calibration file; the shipped one may be absent. Read
    once per (file, modification time): validate asks for it once per row."""
    path = Path(path) if path else shipped
    return _cached_families(str(path), str(shipped), _mtime_ns(path))


def _mtime_ns(path: Path) -> int:
    """A file's modification time for cache keys (-1 when it cannot be read: the reader
    then says why in one line)."""
    try:
        return path.stat().st_mtime_ns
    except (OSError, ValueError):
        return -1


@cache
def _cached_families(path: str, shipped: str, _mtime: int) -> dict:
    return _read_calibration_families(Path(path), Path(shipped))


def _read_calibration_families(path: Path, shipped: Path) -> dict:
    """The ``families`` mapping of a calibration file, read and checked."""
    if path == shipped:
        data = load_shipped_yaml(path) if path.exists() else None
        data = data or {}
    else:
        data = load_yaml_mapping(path, "--calibration",
                                 "a calibration (as flopcast calibrate writes)", allow_empty=True)
    if path != shipped and "families" not in data:
        raise FlopcastError(f"--calibration {path}: not a calibration (allowed: a mapping with "
                            "a 'families' mapping of GPU family -> fitted values, as flopcast "
                            "calibrate writes)")
    families = data.get("families") or {}
    if not isinstance(families, dict) or not all(isinstance(v, dict)
                                                 for v in families.values()):
        raise FlopcastError(f"--calibration {path}: 'families' must map each GPU family to a "
                            "mapping of values")
    return families


def is_inference_calibration(families: dict) -> bool:
    """Whether a calibration's families map engines to values (``flopcast calibrate`` on an
    inference file) rather than efficiency values (on a training file)."""
    return bool(families) and all(
        isinstance(v, dict) and "efficiency" not in v and "fitted" not in v
        and all(isinstance(e, dict) for e in v.values()) for v in families.values())


def is_kernel_calibration(families: dict) -> bool:
    """Whether a calibration's families hold kernel profiles (``flopcast calibrate`` on a
    kernel-timing file: each family a ``profile`` mapping) rather than efficiency values."""
    return bool(families) and all(isinstance(v, dict) and "profile" in v
                                  for v in families.values())


def load_calibration(path: str | Path | None = None,
                     framework: str = DEFAULT_FRAMEWORK) -> dict[str, dict[str, float]]:
    """Efficiency values per GPU family from a calibration file (default: the shipped one),
    with the training framework's whole-run values (the file's ``frameworks`` section:
    overheads and overlap belong to the software, link efficiencies to the hardware) laid
    over each family's. Key ``""`` holds the framework's values alone, for families the file
    does not calibrate. An inference calibration given here leaves the shipped training one
    in force: `infer` and `serve` take either kind with one --calibration option. So does a
    kernel calibration (its profiles replace the shipped kernel fit, in load_gpu)."""
    framework = load_framework(framework).id  # an alias calibrates as its profile
    families = _calibration_families(path, CALIBRATION_FILE)
    if path and (is_inference_calibration(families) or is_kernel_calibration(families)):
        path, families = None, _calibration_families(None, CALIBRATION_FILE)
    own = _calibration_frameworks(path).get(framework, {})
    out = {"": dict(own)}
    for fam, values in families.items():
        eff = values.get("efficiency", values)
        if not isinstance(eff, dict):
            raise FlopcastError(f"calibration: {path}: families.{fam}.efficiency must be a "
                                "mapping of efficiency values")
        out[fam] = {**eff, **own}
    return out


def _calibration_frameworks(path: str | Path | None) -> dict[str, dict[str, float]]:
    """The ``frameworks`` section of a training calibration: framework -> efficiency values."""
    path = Path(path) if path else CALIBRATION_FILE
    return _cached_frameworks(str(path), _mtime_ns(path))


@cache
def _cached_frameworks(path: str, _mtime: int) -> dict[str, dict[str, float]]:
    if Path(path) == CALIBRATION_FILE and not CALIBRATION_FILE.exists():
        return {}
    data = load_yaml_mapping(Path(path), "--calibration",
                             "a calibration (as flopcast calibrate writes)", allow_empty=True)
    section = data.get("frameworks") or {}
    out = {}
    for name, values in (section.items() if isinstance(section, dict) else [(None, None)]):
        eff = values.get("efficiency", values) if isinstance(values, dict) else None
        if not isinstance(eff, dict):
            raise FlopcastError(f"--calibration {path}: 'frameworks' must map each framework "
                                "to a mapping with an 'efficiency' mapping of values")
        out[str(name)] = dict(eff)
    return out


@cache
def _kernel_family_priors(family: str) -> dict:
    path = KERNEL_PRIORS_DIR / f"{family}.yaml"
    return load_shipped_yaml(path) if path.exists() else {}


@cache
def _kernel_calibration() -> dict:
    """The shipped kernel fits by family: kernels.yaml first, then the extra files. A family
    fitted in several files takes the union of their fitted fields (each file fits what its
    rows inform: kernels.csv times no FlashAttention-3); an earlier file wins a field both
    fit."""
    families = dict(_calibration_families(None, KERNEL_CALIBRATION_FILE))
    for path in EXTRA_KERNEL_CALIBRATION_FILES:
        for family, fit in _calibration_families(None, path).items():
            if family in families:
                profile = _deep_merge(fit.get("profile") or {},
                                      families[family].get("profile") or {})
                families[family] = {**families[family], "profile": profile}
            else:
                families[family] = fit
    return families


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def kernel_profile_for(family: str, own: dict | None = None,
                       kernel_calibration: dict | None = None) -> tuple[KernelProfile, str]:
    """The kernel profile of a GPU family, resolved in ONE place: KernelProfile defaults, then
    the family's priors (catalog/kernels/<family>.yaml), then the shipped kernel calibration
    of that family (fitted on kernel timings), then ``kernel_calibration``'s fit of it (a
    --calibration kernel file: what it fits replaces the shipped values, the rest stays),
    then the entry's own ``kernels:`` section (what ``flopcast profile`` writes). Dict-valued
    fields (per-dtype fractions, backends) merge."""
    layers = [(_kernel_family_priors(family), f"priors:{family}")]
    shipped = _kernel_calibration().get(family)
    if shipped:
        layers.append((shipped.get("profile", {}), f"calibration:{family}"))
    own_fit = (kernel_calibration or {}).get(family)
    if own_fit:  # over the shipped fit: it replaces what it fits, keeps the rest
        layers.append((own_fit.get("profile", {}), f"calibration:{family} (--calibration file)"))
    if own:
        layers.append((own, "entry"))
    merged: dict = {}
    sources = []
    for values, name in layers:
        if not values:
            continue
        sources.append(name)
        merged = _deep_merge(merged, values)
    return KernelProfile.model_validate(merged), " + ".join(sources) or "defaults"


def gpu_from_yaml(data: dict, calibration: dict[str, dict[str, float]] | None = None,
                  kernel_calibration: dict | None = None) -> GPU:
    """A GPU spec from a catalog entry (dense TFLOP/s, GiB, GB/s, Gb/s) in SI units.

    Efficiency = Efficiency() defaults, then the calibration of the GPU's family (or, when
    that family has none, of the entry's ``calibration_fallback`` family: the nearest family
    on the same software stack), then any ``efficiency:`` values written in the entry itself.
    """
    d = dict(data)
    for key in ("id", "family"):
        if key not in d:
            raise FlopcastError(f"gpu entry {d.get('id', '?')}: missing field {key}")
    calibration = load_calibration() if calibration is None else calibration
    fallback = d.pop("calibration_fallback", None)
    if d["family"] in calibration:
        fitted, source = calibration[d["family"]], f"calibration:{d['family']}"
    elif fallback in calibration:
        fitted, source = calibration[fallback], f"calibration:{fallback} (fallback)"
    else:
        fitted, source = calibration.get("", {}), "priors"
    kernels, kernels_source = kernel_profile_for(d["family"], d.pop("kernels", None),
                                                 kernel_calibration)
    own = d.pop("efficiency", {})
    if own:
        source += " + entry's own efficiency"
    eff = {**fitted, **own}
    try:
        return GPU(
            id=d["id"], name=d["name"], vendor=d["vendor"], family=d["family"],
            sm_count=d["sm_count"], kernels=kernels, kernels_source=kernels_source,
            peak_flops={k: v * 1e12 for k, v in d["dense_tflops"].items()},
            hbm_bytes=d["hbm_gib"] * GIB,
            hbm_bandwidth=d["hbm_bandwidth_gb_s"] * GB,
            nvlink_bandwidth=d["nvlink_bandwidth_gb_s"] * GB,
            pcie_bandwidth=d["pcie_bandwidth_gb_s"] * GB,
            gpus_per_node=d["gpus_per_node"],
            network_bandwidth=d["network_gbit_s"] * 1e9 / 8,
            tdp_watts=d["tdp_watts"],
            price_per_gpu_hour_usd=d["price_per_gpu_hour_usd"],
            price_date=str(d["price_date"]),
            efficiency=Efficiency.model_validate(eff),
            efficiency_source=source, host=host_from_yaml(d.get("host")),
            calibration_fallback=fallback,
            sources=d.get("sources", []),
        )
    except KeyError as e:
        raise FlopcastError(f"gpu entry {d.get('id', '?')}: missing field {e.args[0]}") from None


def host_from_yaml(data: dict | None) -> Host | None:
    """A host from a GPU entry's ``host:`` mapping (memory_bandwidth_gb_s, cpu_clock_ghz)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise FlopcastError("gpu entry: host must be a mapping")
    d = dict(data)
    for key, si, unit in (("memory_bandwidth", "memory_bandwidth_gb_s", GB),
                          ("cpu_clock_hz", "cpu_clock_ghz", 1e9)):
        if si in d:
            d[key] = d.pop(si) * unit
    return Host.model_validate(d)


GPU_FILE_SUFFIXES = (".yaml", ".yml")


def is_gpu_file(gpu_id: str) -> bool:
    """Whether ``gpu_id`` names a GPU entry file (what `flopcast profile` writes), not an id."""
    return gpu_id.strip().lower().endswith(GPU_FILE_SUFFIXES)


def _read_gpu_file(path: Path) -> dict:
    return load_yaml_mapping(path, "gpu", "a GPU entry")


@cache
def _gpu_cached(gpu_id: str, calibration_path: str | None, _mtime: int = 0,
                framework: str = DEFAULT_FRAMEWORK) -> GPU:
    if is_gpu_file(gpu_id):
        path = Path(gpu_id)
    else:
        path = GPU_DIR / f"{gpu_id}.yaml"
        if not _is_catalog_id(gpu_id) or not path.exists():
            raise FlopcastError(f"gpu: unknown id {gpu_id!r}; known: {', '.join(gpu_ids())} "
                                "(or a GPU entry file.yaml)")
    calibration = load_calibration(calibration_path, framework)
    kernel_fit = None
    if calibration_path:
        families = _calibration_families(calibration_path, CALIBRATION_FILE)
        kernel_fit = families if is_kernel_calibration(families) else None
    if not is_gpu_file(gpu_id):
        return gpu_from_yaml(load_shipped_yaml(path), calibration, kernel_fit)
    data = _read_gpu_file(path)
    try:
        return gpu_from_yaml(data, calibration, kernel_fit)
    except ValidationError as e:
        raise FlopcastError(f"gpu: {path}: {validation_message(e)}") from None
    except FlopcastError as e:
        raise FlopcastError(f"gpu: {path}: {e}") from None
    except (TypeError, AttributeError, ValueError) as e:  # a field of the wrong shape
        raise FlopcastError(f"gpu: {path}: malformed entry ({' '.join(str(e).split())})") \
            from None


def load_gpu(gpu_id: str, calibration: str | Path | None = None,
             framework: str = DEFAULT_FRAMEWORK) -> GPU:
    """The catalog GPU ``gpu_id`` with the calibration applied (default: shipped calibration)
    for training with ``framework`` (whole-run values; inference reads none of them).

    ``gpu_id`` may also be a path to a GPU entry file (``*.yaml``/``*.yml``, the catalog
    format; `flopcast profile` writes one for the device it measured).
    """
    cal = str(calibration) if calibration else None
    if calibration:
        load_calibration(calibration, framework)  # one line for a bad file before anything is built
    if is_gpu_file(gpu_id):
        path = Path(gpu_id.strip()).expanduser()
        read_text(path, "gpu")  # one line for a missing, unreadable or binary file
        # Keyed on the file's modification time so that a rewritten entry is read again.
        gpu = _gpu_cached(str(path.resolve()), cal, path.stat().st_mtime_ns, framework)
        _FILE_GPU_IDS[gpu.id] = str(path.resolve())
        return gpu
    if gpu_id in _FILE_GPU_IDS and not (GPU_DIR / f"{gpu_id}.yaml").exists():
        return load_gpu(_FILE_GPU_IDS[gpu_id], calibration, framework)
    return _gpu_cached(catalog_gpu_id(gpu_id), cal, 0, framework)


def catalog_gpu_id(name: str) -> str:
    """The catalog id a GPU name resolves to ("H100 SXM", "NVIDIA H200" → h200; an entry's
    ``aliases``: catalog/names.py), or ``name`` itself when none does."""
    from flopcast.catalog.names import gpu_name_keys

    names = _gpu_names()
    return next((names[k] for k in gpu_name_keys(name) if k in names), name)


@cache
def _gpu_names() -> dict[str, str]:
    """Every catalog GPU id and alias → its id (:func:`_alias_index`)."""
    return _alias_index("gpu", GPU_DIR, gpu_ids())


def _alias_index(kind: str, directory: Path, ids: list[str]) -> dict[str, str]:
    """Every catalog id and each entry's ``aliases`` (as :func:`name_key` compares names) →
    the entry's id; refuses an alias that two entries claim or that is another entry's id."""
    names = {name_key(i): i for i in ids}
    for i in ids:
        for alias in load_shipped_yaml(directory / f"{i}.yaml").get("aliases") or []:
            key = name_key(alias)
            if names.get(key, i) != i:
                raise FlopcastError(f"{kind} {i}: alias {alias!r} is also {names[key]}'s")
            names[key] = i
    return names


#: Ids of GPU entries loaded from files in this process → their paths: results name a GPU by
#: its id (``config["gpu"]``), and code that looks a GPU up again by that id finds the file.
_FILE_GPU_IDS: dict[str, str] = {}


@cache
def load_model(model_id: str) -> Model:
    """The catalog model ``model_id``, or the entry a published name of it resolves to
    (``meta-llama/Llama-3.1-8B-Instruct``, an alias: catalog/names.py)."""
    from flopcast.catalog.names import model_name_keys

    names = _model_names()
    keys = model_name_keys(model_id) if len(model_id) <= MAX_ID_CHARS else []
    stem = next((names[k] for k in keys if k in names), None)
    if stem is None:
        raise FlopcastError(f"model: unknown id {model_id!r}; known: {', '.join(model_ids())} "
                            "(or a Hugging Face config.json, or a flopcast model YAML)")
    path = MODEL_DIR / f"{stem}.yaml"
    return _model_from_mapping(load_shipped_yaml(path), str(path))


@cache
def _model_names() -> dict[str, str]:
    """Every catalog model id and alias → the entry's file stem (:func:`_alias_index`)."""
    return _alias_index("model", MODEL_DIR, model_ids())


def _model_from_mapping(data: dict, where: str) -> Model:
    try:
        return Model.model_validate(data)
    except ValidationError as e:
        raise FlopcastError(f"{where}: {validation_message(e)}") from None


def resolve_model(ref: str) -> Model:
    """A model from a catalog id or a published name of it (:func:`load_model`), a HF
    ``config.json`` path, or a flopcast model YAML path."""
    path = Path(ref).expanduser()
    is_dir = path_exists(ref) and path.is_dir()
    if path.suffix.lower() in (".json", ".yaml", ".yml") or is_dir:
        if is_dir:
            path = path / "config.json"
        if path.suffix.lower() == ".json":
            from flopcast.catalog.hf_config import model_from_hf_config

            config = load_json_mapping(path, "model", "a Hugging Face config.json")
            # A model directory's config.json is named after its folder; any other file
            # (hf_configs/qwen2.5-0.5b.json) after itself.
            named = path.parent.name if path.name == "config.json" else path.stem
            return model_from_hf_config(config, name=named or path.stem)
        data = load_yaml_mapping(path, "model", "a flopcast model entry")
        return _model_from_mapping(data, str(path))
    return load_model(ref)


@cache
def _engines() -> dict[str, Engine]:
    out = {}
    for path in sorted(ENGINE_DIR.glob("*.yaml")):
        engine = Engine.model_validate(load_shipped_yaml(path))
        for name in [engine.id, *engine.aliases]:
            out[name.lower()] = engine
    for engine in out.values():
        if engine.calibration_engine and engine.calibration_engine not in out:
            raise FlopcastError(f"engine {engine.id}: calibration_engine "
                                f"{engine.calibration_engine!r} is not a catalog engine")
    return out


def engine_ids() -> list[str]:
    return sorted({e.id for e in _engines().values()})


def load_engine(name: str) -> Engine:
    """An engine by id or alias (case-insensitive), e.g. 'TensorRT-LLM', 'vllm'."""
    from flopcast.catalog.names import entry_name_keys

    engines = _engines()
    keys = entry_name_keys(name) if len(name) <= MAX_ID_CHARS else []
    engine = next((engines[k] for k in keys if k in engines), None)
    if engine is None:
        raise FlopcastError(f"engine: unknown {name!r}; known: {', '.join(engine_ids())}")
    return engine


@cache
def _framework_file(path: Path) -> Framework:
    try:
        return Framework.model_validate(load_shipped_yaml(path))
    except ValidationError as e:
        raise FlopcastError(f"{path}: {validation_message(e)}") from None


@cache
def _frameworks() -> dict[str, Framework]:
    out = {}
    for path in sorted(FRAMEWORK_DIR.glob("*.yaml")):
        framework = _framework_file(path)
        for name in [framework.id, *framework.aliases]:
            out[name.lower()] = framework
    return out


def framework_ids() -> list[str]:
    return sorted({f.id for f in _frameworks().values()})


def load_framework(name: str | None = None) -> Framework:
    """A training framework profile by id or alias (case-insensitive), e.g. 'megatron',
    'hf-transformers', 'torchtitan' (= fsdp); None or empty = megatron. An id reads its own
    file only; an alias reads them all."""
    key = (name or DEFAULT_FRAMEWORK).strip().lower() or DEFAULT_FRAMEWORK
    own = FRAMEWORK_DIR / f"{key}.yaml"
    if _is_catalog_id(key) and own.exists():
        return _framework_file(own)
    from flopcast.catalog.names import entry_name_keys

    frameworks = _frameworks()
    keys = entry_name_keys(key) if len(key) <= MAX_ID_CHARS else []
    framework = next((frameworks[k] for k in keys if k in frameworks), None)
    if framework is None:
        aliases = sorted(k for k in _frameworks() if k not in framework_ids())
        raise FlopcastError(f"framework: unknown {name!r}; known: {', '.join(framework_ids())} "
                            f"(aliases: {', '.join(aliases)})")
    return framework


def load_inference_calibration(path: str | Path | None = None) -> dict:
    """{family: {engine id: {efficiency field: value}}} from an inference calibration file; a
    training calibration given here leaves the shipped inference one in force (it already
    applies through the GPU's efficiency)."""
    families = _calibration_families(path, INFERENCE_CALIBRATION_FILE)
    if path and not is_inference_calibration(families):
        families = _calibration_families(None, INFERENCE_CALIBRATION_FILE)
    out: dict = {}
    for fam, engines in families.items():
        out[fam] = {}
        for eng, values in engines.items():
            eff = values.get("efficiency", values) if isinstance(values, dict) else None
            if not isinstance(eff, dict) or "efficiency" in engines:
                raise FlopcastError(
                    f"--calibration {path}: not an inference calibration (families.{fam}."
                    f"{eng} must map efficiency fields to values per engine, as `flopcast "
                    "calibrate inference.csv` writes; a training calibration applies to "
                    "train and plan)")
            out[fam][eng] = dict(eff)
    return out


def inference_calibration_source(gpu: GPU, engine: Engine,
                                 path: str | Path | None = None) -> tuple[str, dict | None]:
    """(description, values) of the inference calibration that applies to (gpu, engine).

    Tried in order: the GPU's family, then its ``calibration_fallback`` family; within each,
    the engine's own entry, then its ``calibration_engine``'s (the runtime it wraps).
    """
    cal = load_inference_calibration(path)
    engines = [e for e in (engine.id, engine.calibration_engine) if e]
    for family in (gpu.family, gpu.calibration_fallback):
        for eng in engines if family else ():
            values = cal.get(family, {}).get(eng)
            if values:
                fallback = " (fallback)" if family != gpu.family or eng != engine.id else ""
                return f"inference calibration {family}/{eng}{fallback}", values
    return f"no inference calibration for {gpu.family}/{engine.id}: training efficiency", None


def inference_efficiency(gpu: GPU, engine: Engine, path: str | Path | None = None) -> Efficiency:
    """The GPU's efficiency with the inference calibration of (its family, engine) on top
    (or of its fallback family's, as for training)."""
    _, values = inference_calibration_source(gpu, engine, path)
    return gpu.efficiency.updated(**values) if values else gpu.efficiency
