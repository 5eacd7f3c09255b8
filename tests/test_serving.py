"""Serving simulator: the iteration price agrees with the layer model; queueing properties."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.errors import FlopcastError
from flopcast.physics import layer
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import batch_step
from flopcast.workloads.serving.run import deployment_for, serve


@dataclass(frozen=True)
class Reqs:
    arrival_s: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    prefix_id: np.ndarray
    prefix_len: np.ndarray


def requests(n=300, rate=None, inp=(50, 600), out=(20, 300), seed=1, prefix=0, groups=0):
    rng = np.random.default_rng(seed)
    arrival = (np.cumsum(rng.exponential(1 / rate, n)) if rate else np.zeros(n))
    pid = rng.integers(0, groups, n) if groups else -np.ones(n, int)
    return Reqs(arrival, rng.integers(*inp, n), rng.integers(*out, n), pid,
                np.full(n, prefix if groups else 0))


@pytest.fixture(scope="module")
def job():
    return InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                        system=System(gpu=load_gpu("h100-sxm"), num_gpus=1))


@pytest.fixture(scope="module")
def dep(job):
    return deployment_for(job)


@pytest.mark.parametrize("pp", [1, 3])
def test_iteration_price_matches_the_layer_model(job, pp):
    """Tables + interpolation agree with batch_step on random mixed iterations (< 1 %), also
    with pipeline stages (each virtual engine's iteration crosses every stage)."""
    from flopcast.workloads.serving.simulator import Simulator

    staged = job.model_copy(update={"pp": pp, "system": System(gpu=job.system.gpu,
                                                               num_gpus=pp)})
    dep = deployment_for(staged)
    sim = Simulator(dep, _table(requests(5, inp=(9000, 9001))), None)
    rng = np.random.default_rng(0)
    for _ in range(25):
        chunk, offset = int(rng.integers(1, 3000)), int(rng.integers(0, 5000))
        seqs, ctx = int(rng.integers(0, 200)), float(rng.integers(10, 8000))
        keys = sim.key_prefix[offset + chunk] - sim.key_prefix[offset]
        fast = sim.replicas[0].cost.step_s(chunk, keys, 1, seqs, seqs * ctx, seqs + 1)
        exact = batch_step(dep.job, dep.eff, layer.Batch(
            prefill_tokens=chunk, prefill_context=keys / chunk, prefill_sequences=1,
            decode_seqs=seqs, decode_context=ctx), logit_rows=seqs + 1)["step_s"]
        assert fast == pytest.approx(float(exact), rel=0.01)


def _table(r):
    from flopcast.workloads.serving.replica import RequestTable

    return RequestTable(r.arrival_s.tolist(), r.input_len.tolist(), r.output_len.tolist(),
                        r.prefix_id.tolist(), r.prefix_len.tolist())


def test_littles_law_and_rate_bounds(dep):
    s, res = serve(dep, requests(600, rate=8.0))
    r = res.requests
    in_system = np.asarray(r.finish) - np.asarray(r.arrival)
    mean_in_system = in_system.sum() / s["duration_s"]          # L = time-average in system
    assert mean_in_system == pytest.approx(s["requests_per_s"] * in_system.mean(), rel=0.05)
    assert s["requests_per_s"] <= 8.0 * 1.15                     # never above the offered rate
    offline = serve(dep, requests(600))[0]
    assert s["requests_per_s"] <= offline["requests_per_s"] * 1.01


def test_percentiles_ordered_and_latency_rises_with_rate(dep):
    low = serve(dep, requests(400, rate=2.0))[0]
    high = serve(dep, requests(400, rate=40.0))[0]
    for s in (low, high):
        for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms"):
            assert s[k]["p99"] >= s[k]["p90"] >= s[k]["p50"] > 0
    assert high["ttft_ms"]["p50"] > low["ttft_ms"]["p50"]
    assert high["e2e_latency_ms"]["p50"] > low["e2e_latency_ms"]["p50"]


def test_cdf_is_the_distribution_of_the_requests(dep):
    """The summary's cdf: the fixed quantile grid, non-decreasing values, the summary's
    p50/p90/p99 at 0.5/0.9/0.99, the fastest and slowest request at 0 and 1, and at each
    grid point about that share of the requests (of the output tokens for ITL) at or below."""
    s, res = serve(dep, requests(400, rate=20.0))
    r = res.requests
    arrival, first, finish = (np.asarray(x, float) for x in (r.arrival, r.first_token, r.finish))
    per_request = {"ttft_ms": 1e3 * (first - arrival), "e2e_latency_ms": 1e3 * (finish - arrival)}
    assert set(s["cdf"]) == {"ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms"}
    for key, c in s["cdf"].items():
        q, v = np.array(c["quantiles"]), np.array(c["values"])
        assert 20 <= q.size <= 25 and q.size == v.size and q[0] == 0.0 and q[-1] == 1.0
        assert np.all(np.diff(q) > 0) and np.all(np.diff(v) >= 0) and v[0] > 0, key
        for p in (50, 90, 99):
            assert v[np.flatnonzero(q == p / 100)[0]] == pytest.approx(s[key][f"p{p}"],
                                                                       rel=1e-12), (key, p)
    for key, lat in per_request.items():
        v = np.array(s["cdf"][key]["values"])
        assert v[0] == pytest.approx(lat.min()) and v[-1] == pytest.approx(lat.max())
        share = (lat[:, None] <= v[None, :] * (1 + 1e-12)).mean(axis=0)
        assert np.all(share >= np.array(s["cdf"][key]["quantiles"]) - 1 / lat.size), key
    itl, w = np.asarray(res.itl_s) * 1e3, np.asarray(res.itl_weight, float)
    v = np.array(s["cdf"]["itl_ms"]["values"])
    share = ((itl[:, None] <= v[None, :] * (1 + 1e-12)) * w[:, None]).sum(axis=0) / w.sum()
    assert np.all(share >= np.array(s["cdf"]["itl_ms"]["quantiles"]) - 1e-12)
    assert v[-1] == pytest.approx(itl[w > 0].max())


def test_same_seed_same_json(dep):
    a = json.dumps(serve(dep, requests(200, rate=5.0))[0], sort_keys=True)
    b = json.dumps(serve(dep, requests(200, rate=5.0))[0], sort_keys=True)
    assert a == b


def test_chunked_prefill_lowers_tpot_tail_under_mixed_load(job):
    # below saturation (~5 req/s here): past it the KV cache fills and preemptions, not
    # prefill stalls, set the tail
    mixed = requests(300, rate=4.0, inp=(2000, 7000), out=(50, 400))
    whole = serve(deployment_for(job, scheduler="prefill-first", chunk_tokens=0), mixed)[0]
    chunked = serve(deployment_for(job, scheduler="sarathi"), mixed)[0]
    assert chunked["tpot_ms"]["p99"] < whole["tpot_ms"]["p99"]


def test_prefix_hits_lower_ttft(job):
    shared = requests(300, rate=4.0, inp=(1500, 2500), groups=4, prefix=1400)
    on = serve(deployment_for(job, prefix_caching=True), shared)[0]
    off = serve(deployment_for(job, prefix_caching=False), shared)[0]
    assert on["ttft_ms"]["p50"] < off["ttft_ms"]["p50"]


def test_kv_pressure_preempts_and_still_finishes(job):
    small = deployment_for(job.model_copy(update={"system": System(
        gpu=load_gpu("h100-sxm").model_copy(update={"hbm_bytes": 24 * 2**30}),
        num_gpus=1)}))
    s = serve(small, requests(200, inp=(3000, 6000), out=(500, 1500)))[0]
    assert s["num_requests"] == 200 and s["preemptions"] > 0


@pytest.mark.parametrize("scheduler", ["vllm", "sarathi", "trtllm-inflight", "trtllm-no-evict",
                                       "prefill-first", "sglang", "static"])
def test_every_scheduler_serves_every_request(job, scheduler):
    s = serve(deployment_for(job, scheduler=scheduler, batch_size=16), requests(120, rate=10))[0]
    assert s["num_requests"] == 120
    assert s["output_tokens_per_s"] > 0


def test_replicas_share_the_load(job):
    two = job.model_copy(update={"system": System(gpu=load_gpu("h100-sxm"), num_gpus=2)})
    one_s = serve(deployment_for(job), requests(400, rate=30))[0]
    for router in ("round-robin", "least-outstanding-tokens", "prefix-affinity"):
        two_s = serve(deployment_for(two, router=router), requests(400, rate=30))[0]
        assert two_s["ttft_ms"]["p90"] <= one_s["ttft_ms"]["p90"]


def test_unknown_scheduler_and_impossible_requests(job, dep):
    with pytest.raises(FlopcastError, match="scheduler"):
        deployment_for(job, scheduler="fifo")
    with pytest.raises(FlopcastError, match="KV blocks"):
        serve(dep, requests(3, inp=(2_000_000, 2_000_001)))


def test_prefill_decode_pools(job):
    """Splitwise/DistServe: prefill and decode pools; KV shipped between them costs time."""
    from dataclasses import replace

    two = job.model_copy(update={"system": System(gpu=load_gpu("h100-sxm"), num_gpus=1)})
    pre, dec = deployment_for(two), deployment_for(two)
    pools = [replace(pre, role="prefill"), replace(dec, role="decode")]
    work = requests(300, rate=6.0)
    s, res = serve(pools, work)
    assert s["num_requests"] == 300
    assert set(res.requests.replica) == {1}          # everyone finished on the decode replica
    slow = [replace(pre, role="prefill", kv_link="network"), replace(dec, role="decode")]
    fast = [replace(pre, role="prefill", kv_link="nvlink"), replace(dec, role="decode")]
    assert serve(fast, work)[0]["e2e_latency_ms"]["mean"] < \
        serve(slow, work)[0]["e2e_latency_ms"]["mean"]
    with pytest.raises(FlopcastError, match="decode pool"):
        serve([replace(pre, role="prefill")], work)


def test_mixed_gpu_fleet(job):
    """Mélange-style heterogeneous pools: an L40S replica beside an H100 one."""
    l40s = job.model_copy(update={"system": System(gpu=load_gpu("l40s"), num_gpus=1)})
    s = serve([deployment_for(job, router="least-outstanding-tokens"), deployment_for(l40s)],
              requests(300, rate=15.0))[0]
    assert s["num_requests"] == 300


@pytest.mark.parametrize("scheduler", ["vllm", "sglang", "static"])
def test_shortcuts_change_nothing(job, scheduler, monkeypatch):
    """Skipping the scheduler in all-decode stretches and vectorising long stretches are
    speed-ups only: finish times are identical with them off."""
    import flopcast.workloads.serving.simulator as sim

    dep = deployment_for(job, scheduler=scheduler, batch_size=16)
    work = requests(300, rate=20.0)
    fast = serve(dep, work)[1].requests.finish
    monkeypatch.setattr(sim, "FAST_PATH", False)
    monkeypatch.setattr(sim, "LONG_STRETCH", 10**9)
    slow = serve(dep, work)[1].requests.finish
    assert fast == pytest.approx(slow, rel=1e-9)


def test_plot_and_chrome_trace(dep, tmp_path):
    from flopcast.report.serving import plot_serving, write_chrome_trace

    pytest.importorskip("matplotlib")
    _, res = serve(dep, requests(100, rate=10.0), keep_trace=True)
    assert plot_serving(res, tmp_path / "s.png").stat().st_size > 10_000
    events = json.loads(write_chrome_trace(res, tmp_path / "t.json").read_text())["traceEvents"]
    assert events and all(e["dur"] > 0 for e in events)


def _small_memory(job, gib=24):
    gpu = load_gpu("h100-sxm").model_copy(update={"hbm_bytes": gib * 2**30})
    return job.model_copy(update={"system": System(gpu=gpu, num_gpus=1)})


@pytest.mark.parametrize("scheduler", ["vllm", "sarathi", "trtllm-inflight", "trtllm-no-evict",
                                       "prefill-first", "sglang"])
def test_memory_pressure_never_deadlocks(job, scheduler):
    """Long prompts and outputs on a small memory: preempted requests rebuild their cache
    and decode again; chunked prefills preempt rather than wait forever."""
    chunk = 0 if scheduler == "prefill-first" else 512  # vLLM V0 prefills whole prompts
    # (V0's token budget was the model length; V1's on a 24 GiB GPU is 2,048)
    tokens = 8192 if scheduler == "prefill-first" else None
    dep = deployment_for(_small_memory(job), scheduler=scheduler, chunk_tokens=chunk,
                         max_num_tokens=tokens)
    s, res = serve(dep, requests(120, inp=(3000, 7000), out=(500, 2500)))
    r = res.requests
    assert s["num_requests"] == 120
    assert all(g == o for g, o in zip(r.generated, r.output, strict=True))
    decoded = sum(o - 1 for o in r.output)   # every token after the first is one ITL gap
    assert sum(res.itl_weight) == decoded


def test_prefix_blocks_are_conserved(job):
    from flopcast.workloads.serving.simulator import Simulator

    dep = deployment_for(_small_memory(job), prefix_caching=True)
    sim = Simulator(dep, _table(requests(200, rate=30.0, inp=(1500, 4000), groups=6,
                                         prefix=1200)), None)
    sim.run()
    rep = sim.replicas[0]
    assert rep.free_blocks + sum(rep.prefixes.values()) == rep.capacity
    assert rep.evictable == sum(rep.prefixes.values())


def test_closed_loop_across_replicas_is_causal(job, monkeypatch):
    """A finish on one replica releases the next request; no replica may have simulated
    past that moment: stepping every iteration gives the same finish times."""
    import flopcast.workloads.serving.simulator as sim

    two = job.model_copy(update={"system": System(gpu=load_gpu("h100-sxm"), num_gpus=2)})
    dep = deployment_for(two)
    fast = serve(dep, requests(200), concurrency=8)[1].requests.finish
    monkeypatch.setattr(sim, "FAST_PATH", False)
    monkeypatch.setattr(sim, "LONG_STRETCH", 10**9)
    assert serve(dep, requests(200), concurrency=8)[1].requests.finish == pytest.approx(
        fast, rel=1e-9)


def test_prefix_cache_under_memory_pressure_makes_progress(job):
    """Free blocks below one per running request but cached prefixes evictable: the decode
    stretch grows into free blocks only, so it must not be taken (it ran zero steps forever);
    the scheduler evicts prefixes instead. Guarded by an alarm so a regression fails."""
    import signal

    def _hang(*_):
        raise TimeoutError("the simulation stopped advancing")

    old = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(60)
    try:
        dep = deployment_for(_small_memory(job), prefix_caching=True)
        s = serve(dep, requests(150, rate=30.0, inp=(2000, 6000), out=(100, 400), groups=6,
                                prefix=1200))[0]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert s["num_requests"] == 150 and s["preemptions"] > 0


@pytest.mark.parametrize(("engine", "work"), [
    ("tensorrt-llm", dict(n=100, inp=(500, 8000), out=(1000, 3000), seed=3)),
    ("vllm", dict(n=150, rate=30.0, inp=(2000, 6000), out=(100, 900), groups=6, prefix=1200)),
    ("sglang", dict(n=150, rate=30.0, inp=(2000, 6000), out=(100, 900), groups=6, prefix=1200)),
])
def test_block_lanes_change_nothing(job, engine, work, monkeypatch):
    """Counting KV blocks per lane (lockstep.py) gives the numbers of granting them request
    by request, under memory pressure too (preemptions, requests that change from lane to
    heap and back, evictions of cached prefixes)."""
    import flopcast.workloads.serving.lockstep as lockstep

    tight = _small_memory(job.model_copy(update={"engine": load_engine(engine)}))
    dep = deployment_for(tight, prefix_caching=True)
    fast, res = serve(dep, requests(**work))
    assert fast["preemptions"] > 0
    monkeypatch.setattr(lockstep, "LANES", False)
    slow, res_slow = serve(dep, requests(**work))
    assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)
    assert res.occupancy == res_slow.occupancy


def test_requests_no_replica_can_hold_are_named(job):
    """The first request too long for the KV cache, or (unchunked) for one iteration, is
    refused by index before anything runs."""
    work = requests(50, inp=(100, 200), out=(10, 20))
    work.input_len[7] = work.input_len[30] = 500_000
    with pytest.raises(FlopcastError, match=r"request 7: 500000\+\d+ tokens need \d+ KV blocks"):
        serve(deployment_for(job), work)
    work.input_len[7] = work.input_len[30] = 9000
    with pytest.raises(FlopcastError, match="request 7: prompt of 9000 tokens exceeds"):
        serve(deployment_for(job, scheduler="prefill-first", chunk_tokens=0), work)
    assert serve(deployment_for(job), work)[0]["num_requests"] == 50  # chunked: fine


def test_slo_rate_is_capped_at_saturation_whatever_the_run_length(dep):
    """A TPOT-only SLO cannot see a growing queue; the search stops at the replica's saturated
    throughput, which does not depend on how many requests are simulated (it grew with them
    when the cap was 1.5x a drain-dominated offline run) and exceeds the offline run's own
    requests/s (whose last long requests drain with a nearly empty batch)."""
    from flopcast.workloads.serving.capacity import max_rate_under_slo, saturated_rate

    rates = [max_rate_under_slo(dep, requests(n), None, 1e4) for n in (150, 600)]
    assert all(s.get("at_saturation") for _, s in rates)
    assert rates[0][0] == pytest.approx(rates[1][0], rel=0.1)
    offline = serve(dep, requests(150))[0]["requests_per_s"]
    assert saturated_rate(dep, requests(150)) > offline
    tight, summary = max_rate_under_slo(dep, requests(150), None, 12.0)
    assert tight < rates[0][0] and not summary.get("at_saturation")


def test_saturation_fills_every_pipeline_stage(job):
    """With pp stages a replica runs pp micro-batches, each up to max_num_seqs: the closed
    loop must fill them all, so pp = 2 saturates well above one stage's worth of slots."""
    from flopcast.workloads.serving.capacity import saturated_rate

    piped = job.model_copy(update={"system": job.system.model_copy(update={"num_gpus": 2}),
                                   "pp": 2})
    dep = deployment_for(piped, max_num_seqs=16)
    one_stage = deployment_for(job, max_num_seqs=16)
    assert saturated_rate(dep, requests(200)) > 1.5 * saturated_rate(one_stage, requests(200))


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_kv_use_counts_what_decoding_grew(job, engine):
    """All requests at once with equal lengths decode in one stretch to the end: the reported
    peak is every sequence's prompt + output in blocks (not the prompts only, which the
    stretch's single grant at its end once hid), the time-average about half way there,
    and the chrome trace's KV column climbs through the stretch."""
    dep = deployment_for(job.model_copy(update={"engine": load_engine(engine)}))
    n, prompt, output = 64, 100, 2000
    work = Reqs(np.zeros(n), np.full(n, prompt), np.full(n, output), -np.ones(n, int),
                np.zeros(n))
    summary, res = serve(dep, work, keep_trace=True)
    block = dep.job.engine.kv_block_tokens
    capacity = res.kv_capacity_blocks[0]
    held = n * -(-(prompt + output) // block)
    assert summary["kv_utilization_peak"] == pytest.approx(held / capacity, rel=0.01)
    assert 0.4 < summary["kv_utilization_mean"] / summary["kv_utilization_peak"] < 0.6
    used = [entry[-1] for entry in res.trace[0]]
    assert used[-1] > 10 * used[0]


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_kv_mean_agrees_with_the_trace(job, engine):
    """The reported mean KV use is the trace's KV column integrated over its steps (later
    decode steps are longer: growth is linear in steps, not in time)."""
    dep = deployment_for(job.model_copy(update={"engine": load_engine(engine)}))
    n, prompt, output = 16, 100, 16000
    work = Reqs(np.zeros(n), np.full(n, prompt), np.full(n, output), -np.ones(n, int),
                np.zeros(n))
    summary, res = serve(dep, work, keep_trace=True)
    traced = sum((end - start) * used for start, end, *_, used in res.trace[0])
    assert summary["kv_utilization_mean"] == pytest.approx(
        traced / (res.kv_capacity_blocks[0] * summary["duration_s"]), rel=0.005)


def test_prefill_pool_reports_the_kv_it_held(job):
    """A prefill replica frees a prompt's blocks when it hands the KV over, at the end of
    the iteration that held them: its KV use counts that iteration."""
    from dataclasses import replace

    dep = deployment_for(job)
    pools = [replace(dep, role="prefill"), replace(dep, role="decode")]
    summary, res = serve(pools, requests(100, rate=10))
    assert res.occupancy[0]["peak_kv_blocks"] > 0 and res.occupancy[0]["kv_block_s"] > 0


@pytest.mark.parametrize("gib", [24, 80])
def test_sglang_reservation_counted_in_o1_equals_the_sum(job, gib, monkeypatch):
    """SGLang's admission reserves the running requests' remaining outputs; the replica
    keeps their sum as requests are admitted, decode, are preempted and finish. With the
    check on, every reservation is also summed request by request and compared."""
    import flopcast.workloads.serving.schedulers.sglang as sglang

    monkeypatch.setattr(sglang, "CHECK_RESERVED", True)
    dep = deployment_for(_small_memory(job, gib).model_copy(
        update={"engine": load_engine("sglang")}), prefix_caching=True)
    s = serve(dep, requests(150, rate=30.0, inp=(500, 4000), out=(50, 800), groups=3,
                            prefix=300))[0]
    assert s["num_requests"] == 150
    assert (s["preemptions"] > 0) == (gib == 24)


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_prefill_first_with_chunks_admits_whole_prompts_and_finishes(job, engine):
    """vLLM V0's block manager allocates a prompt's blocks when it first schedules it; holding
    only the first chunk let a long prompt preempt itself for its next chunk and be readmitted
    for its first, forever, while the decodes that free memory never ran (found by the second
    reader: Llama-3.1-8B on an L4, prefill-first with chunked prefill, hung)."""
    import signal

    from flopcast.workloads.serving.workload import ArrivalSpec, LengthSpec, make_requests

    l4 = job.model_copy(update={"system": System(gpu=load_gpu("l4"), num_gpus=1),
                                "engine": load_engine(engine)})
    work = make_requests(LengthSpec(kind="uniform", input_len=1600, output_len=460,
                                    range_ratio=0.85), ArrivalSpec(kind="poisson", rate=30.0),
                         200, seed=0)

    def hung(*_):
        raise TimeoutError("prefill-first with chunked prefill did not finish in 120 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)  # the loop it guards against never ends
    try:
        s, res = serve(deployment_for(l4, scheduler="prefill-first"), work)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert s["num_requests"] == 200 and np.isfinite(res.requests.finish).all()
    assert s["preemptions"] > 0  # memory was short: the case that looped
