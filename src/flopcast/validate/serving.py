"""Rows that need the serving simulator: all of serving.csv, and the inference.csv rows with
variable lengths (ShareGPT) or an open-loop request rate.

Each row becomes a simulation; rows that differ only in the metric share one. Rules, from
../shared/measurements/README.md and datasets.md:
- scenario ``offline`` (or request_rate ``inf``): every request at time 0; ``closed``: a
  closed loop at ``concurrency``; ``online``/``server``: Poisson at ``request_rate``;
  ``static``: one static batch of ``batch_size`` requests (TensorRT-LLM session benchmark).
  inference.csv has no scenario column: the same rules follow from its columns.
- dataset ``fixed``: exact lengths; ``random``: uniform integer lengths up to the nominal
  ones (sglang random_range_ratio 0), or within ±N % of them when the row's notes state such
  a spread; ``sharegpt`` (and inference.csv rows with empty lengths): the catalog's ShareGPT
  distribution; MLPerf sets: their catalog entries. A static batch's TTFT row may leave
  output_len empty (the batch is prefilled before any token is decoded).
- a plain latency metric (``ttft_ms``) is the median (SGLang rows are medians; for fixed
  lengths and batches mean and median coincide); ``max_qps_under_slo`` runs the capacity
  search.
- engine limits (max_batch_size, max_num_tokens) and the KV format come from the row when
  given, else from the engine's catalog entry on the row's GPU (Engine.for_gpu); empty tp =
  1, precision = bf16; a row's ``engine_version`` selects that release's decode CUDA graphs,
  overlapped scheduling and decode attention kernel (Engine.at_version); without a version
  the catalog's (current) engine stands.
- at most ``MAX_SIMULATED`` requests are simulated per row (steady-state metrics); offline rows
  keep their count, since the drain at the end is part of what they measure.
- a random workload (sampled lengths or Poisson arrivals) is simulated as several independent
  draws and each metric is their median (serving.draws: enough draws for 2,000 requests, an
  odd count, at most 9), as ``flopcast serve`` does: one seed's drain is not a prediction of
  another run's. The SLO search (``max_qps_under_slo``) uses the first draw.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pydantic import ValidationError

from flopcast.catalog import load_gpu, resolve_model
from flopcast.catalog.loader import load_engine
from flopcast.errors import FlopcastError
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.validate.inference import _float
from flopcast.validate.inputs import measured_value, shown
from flopcast.validate.training import _int, _reason

#: Closed-loop and online rows: requests simulated at most.
MAX_SIMULATED = 2000
#: Offline rows: requests simulated at most.
MAX_OFFLINE = 6000
STATISTICS = {"mean": "mean", "p50": "p50", "p90": "p90", "p99": "p99", "": "p50"}
LATENCIES = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms")
THROUGHPUTS = ("output_tokens_per_s", "output_tokens_per_s_per_gpu", "requests_per_s",
               "total_duration_s", "max_qps_under_slo", "total_tokens_per_s")


@dataclass(frozen=True)
class ServingCase:
    id: str
    source: str
    metric: str
    measured: float
    setup: tuple | None   # (job, deployment overrides, workload) shared by a simulation
    skipped: str | None


def _text(row: dict, key: str) -> str:
    return (row.get(key) or "").strip()


def needs_simulation(row: dict) -> bool:
    """Rows a steady-state estimate cannot answer: variable lengths or an open-loop rate."""
    rate = _text(row, "request_rate")
    return (not _text(row, "input_len") or not _text(row, "output_len")
            or (rate not in ("", "inf") and not _text(row, "concurrency")
                and not _text(row, "batch_size")))


def _metric_key(metric: str) -> tuple[str, str]:
    """('ttft_ms', 'p50') from 'ttft_ms_p50'; plain latencies are medians."""
    for base in LATENCIES:
        if metric == base or metric.startswith(base + "_"):
            stat = metric[len(base) + 1:]
            if stat not in STATISTICS:
                raise FlopcastError(f"metric {shown(metric)}: statistic {shown(stat)} not known")
            return base, STATISTICS[stat]
    if metric in THROUGHPUTS:
        return metric, ""
    raise FlopcastError(f"metric {shown(metric)} is not a serving metric")


def _lengths(row: dict, static: bool = False) -> dict:
    """LengthSpec arguments for the row (see the module rules). A static batch's TTFT does not
    depend on the output length (the whole batch is prefilled before any token is decoded), so
    a TTFT row of a static batch without output_len simulates one output token."""
    dataset = _text(row, "dataset").lower()
    inp, out = _int(row, "input_len"), _int(row, "output_len")
    if static and inp and not out and _metric_key(_text(row, "metric"))[0] == "ttft_ms":
        out = 1
    if not dataset:
        dataset = "fixed" if inp and out else "sharegpt"
    if dataset == "fixed":
        if not (inp and out):
            raise FlopcastError("fixed lengths but input_len/output_len not given")
        return dict(kind="fixed", input_len=inp, output_len=out)
    if dataset == "random":
        spread = re.search(r"\+-\s*(\d+(?:\.\d+)?)\s*%", row.get("notes") or "")
        if spread:
            return dict(kind="uniform", input_len=inp, output_len=out,
                        range_ratio=float(spread.group(1)) / 100)
        return dict(kind="random", input_len=inp, output_len=out, range_ratio=0.0)
    return dict(kind="dataset", dataset=dataset, input_len=inp, output_len=out)


def _load(row: dict) -> tuple[dict, int, int | None]:
    """(ArrivalSpec arguments, requests to simulate, closed-loop concurrency)."""
    scenario = _text(row, "scenario").lower()
    n = _int(row, "num_requests")
    conc, batch = _int(row, "concurrency"), _int(row, "batch_size")
    if scenario == "static" or (not scenario and batch):
        if not batch:
            raise FlopcastError("static scenario without batch_size")
        return dict(kind="offline"), batch, None
    if scenario in ("server", "interactive"):
        raise FlopcastError(f"scenario {shown(scenario)}: MLPerf server runs need the submitter's "
                            "target QPS (not in the row)")
    if scenario == "closed" or (not scenario and conc):
        if not conc:
            raise FlopcastError("closed scenario without concurrency")
        return dict(kind="concurrency", concurrency=conc), min(n or MAX_SIMULATED,
                                                                MAX_SIMULATED), conc
    rate = _float(row, "request_rate")
    if scenario == "offline" or rate is None or math.isinf(rate):
        return dict(kind="offline"), min(n or MAX_OFFLINE, MAX_OFFLINE), None
    return dict(kind="poisson", rate=rate), min(n or MAX_SIMULATED, MAX_SIMULATED), None


def setup_from_row(row: dict, calibration: str | None = None) -> tuple:
    n_gpus = _int(row, "num_gpus", 1)
    pp = _int(row, "pp", 1)
    tp = _int(row, "tp", 1)
    replicas = _int(row, "replicas")
    if replicas and replicas * tp * pp != n_gpus:
        raise FlopcastError(f"replicas ({replicas}) · tp ({tp}) · pp ({pp}) ≠ num_gpus "
                            f"({n_gpus})")
    job = InferenceJob(
        model=resolve_model(_text(row, "model")),
        system=System(gpu=load_gpu(_text(row, "gpu"), calibration), num_gpus=n_gpus),
        engine=load_engine(_text(row, "engine") or "generic").at_version(
            _text(row, "engine_version") or None), tp=tp, pp=pp,
        ep=_int(row, "ep", 1), weights=_text(row, "precision") or "bf16",
        kv_format=_text(row, "kv_precision") or None)
    arrivals, n, concurrency = _load(row)
    static = _text(row, "scenario").lower() == "static" or (
        not _text(row, "scenario") and _int(row, "batch_size"))
    overrides = (("static" if static else None), _int(row, "max_batch_size"),
                 _int(row, "max_num_tokens"), _int(row, "batch_size") if static else None)
    lengths = _lengths(row, bool(static))
    workload = (tuple(sorted(lengths.items())), tuple(sorted(arrivals.items())), n, concurrency,
                _float(row, "slo_ttft_ms"), _float(row, "slo_tpot_ms"))
    return job, overrides, workload


def prepare_serving_rows(rows: list[dict], calibration: str | None = None) -> list[ServingCase]:
    cases = []
    for i, row in enumerate(rows):
        rid = row.get("id") or f"row{i + 1}"
        metric = _text(row, "metric")
        measured, setup, skipped = math.nan, None, None
        try:
            measured = measured_value(row)
            _metric_key(metric)
            setup = setup_from_row(row, calibration)
        except (FlopcastError, ValidationError, ValueError, TypeError, KeyError) as e:
            skipped = _reason(e)
        cases.append(ServingCase(rid, row.get("source", ""), metric, measured, setup, skipped))
    return cases


class ServingPredictor:
    """Simulates each distinct setup once and answers every metric of it."""

    def __init__(self, calibration: str | None = None):
        self.calibration = calibration
        self.memo: dict = {}

    def summary(self, setup: tuple) -> dict:
        """The simulation summary of ``setup``; a setup the simulator refuses raises its
        FlopcastError again for every row of it, without simulating again."""
        job, overrides, workload = setup
        key = (job.model_dump_json(), overrides, workload)
        if key not in self.memo:
            try:
                self.memo[key] = self._simulate(job, overrides, workload)
            except (FlopcastError, ValidationError) as e:
                self.memo[key] = FlopcastError(_reason(e))
        if isinstance(self.memo[key], FlopcastError):
            raise FlopcastError(str(self.memo[key]))
        return self.memo[key]

    def _simulate(self, job, overrides, workload) -> dict:
        from flopcast.workloads.serving.capacity import max_rate_under_slo
        from flopcast.workloads.serving.draws import serve_draws
        from flopcast.workloads.serving.run import deployment_for, serve
        from flopcast.workloads.serving.workload import ArrivalSpec, LengthSpec, make_requests

        scheduler, max_seqs, max_tokens, batch = overrides
        lengths, arrivals, n, concurrency, slo_ttft, slo_tpot = workload
        dep = deployment_for(job, scheduler, max_seqs, max_tokens, batch_size=batch,
                             calibration=self.calibration)
        length_spec, arrival_spec = LengthSpec(**dict(lengths)), ArrivalSpec(**dict(arrivals))
        reqs = make_requests(length_spec, arrival_spec, n, seed=0)
        summary = serve_draws(
            lambda q, first: serve(dep, q, concurrency, calibration=self.calibration),
            lambda seed: reqs if seed == 0 else make_requests(length_spec, arrival_spec, n,
                                                              seed=seed))[0]
        if slo_ttft or slo_tpot:
            summary["max_qps_under_slo"] = max_rate_under_slo(dep, reqs, slo_ttft, slo_tpot)[0]
        return summary

    def predict(self, case: ServingCase) -> float | None:
        if case.setup is None:
            return None
        s = self.summary(case.setup)
        base, stat = _metric_key(case.metric)
        if base == "total_duration_s":
            return s["duration_s"]
        if base == "max_qps_under_slo":
            return s.get("max_qps_under_slo")
        return s[base][stat] if stat else s[base]
