"""Physical invariants of the training model over random valid configurations (issue 12).

Each property draws a training job (a catalog model or a random dense/MoE shape, a GPU and
precision it supports, tp/pp/vp/cp/ep/dp, micro-batch, sequence length, recomputation, ZeRO
stage, …) and evaluates it through ``estimate_training``, the function behind
``flopcast train --json``. ``derandomize=True`` makes every run draw the same examples.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flopcast import estimate_training
from flopcast.catalog import load_gpu, load_model, model_ids
from flopcast.specs import Model, Parallelism, System, TrainingJob
from flopcast.specs.precision import precision
from flopcast.workloads.training.estimate import MEMORY_KINDS

EXAMPLES = 200
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])

GPUS = ("h100-sxm", "a100-40gb", "a100-80gb", "b200", "gb200", "h200", "mi300x", "l40s")
PRECISIONS = ("bf16", "bf16", "fp16", "fp8", "mxfp8", "nvfp4", "fp32")
POW2 = (1, 2, 4, 8)


def _divisors(n: int, among=(1, 2, 4, 8, 16, 32, 64)) -> list[int]:
    return [d for d in among if n % d == 0]


@st.composite
def random_models(draw) -> Model:
    """A random dense or MoE decoder shape (multi-head or grouped-query attention)."""
    heads = draw(st.sampled_from((4, 8, 16, 32, 64)))
    head_dim = draw(st.sampled_from((32, 64, 128)))
    hidden = heads * head_dim
    kv = draw(st.sampled_from(_divisors(heads)))
    swiglu = draw(st.booleans())
    ffn = hidden * draw(st.sampled_from((2, 3, 4)))
    fields = dict(
        name="random", num_layers=draw(st.integers(1, 48)), hidden_size=hidden,
        num_attention_heads=heads, num_kv_heads=kv, ffn_hidden_size=ffn,
        vocab_size=draw(st.integers(1000, 160_000)), mlp="swiglu" if swiglu else "gelu",
        tied_embeddings=draw(st.booleans()), dropout=draw(st.booleans()),
    )
    if draw(st.integers(0, 3)) == 0:
        experts = draw(st.sampled_from((4, 8, 16, 64)))
        fields.update(num_experts=experts, moe_top_k=draw(st.integers(1, min(experts, 8))),
                      moe_ffn_hidden_size=hidden * draw(st.sampled_from((1, 2))),
                      num_shared_experts=draw(st.integers(0, 1)))
    return Model(**fields)


models = st.one_of(st.sampled_from(model_ids()).map(load_model), random_models())


@st.composite
def training_jobs(draw, min_dp: int = 1) -> TrainingJob:
    """A valid training job (data-parallel size at least ``min_dp``): parallel sizes are
    drawn among the divisors the rules allow."""
    m = draw(models)
    heads_tp = m.num_attention_heads if m.is_mla else math.gcd(m.num_attention_heads,
                                                                 m.kv_heads)
    tp = draw(st.sampled_from(_divisors(heads_tp, POW2)))
    pp = draw(st.sampled_from([p for p in POW2 if p <= m.num_layers]))
    vp = draw(st.sampled_from([v for v in (1, 2) if pp > 1 and pp * v <= m.num_layers] or [1]))
    seq_len = draw(st.sampled_from((512, 1024, 2048, 4096, 8192)))
    cp = draw(st.sampled_from((1, 1, 2, 4)))
    dp = draw(st.sampled_from([d for d in (1, 2, 4, 8, 16) if d >= min_dp]))
    ep = etp = 1
    if m.is_moe:
        ep = draw(st.sampled_from(_divisors(math.gcd(m.num_experts, cp * dp))))
        etp = draw(st.sampled_from(_divisors(math.gcd(tp, m.moe_ffn_hidden_size), (1, tp))))
    micro_batch = draw(st.integers(1, 4))
    num_micro = draw(st.integers(1, 8))
    gpu = load_gpu(draw(st.sampled_from(GPUS)))
    recipes = [r for r in PRECISIONS
               if {precision(r).gemm_dtype, precision(r).compute_dtype} <= set(gpu.peak_flops)]
    sp = draw(st.booleans())
    parallel = Parallelism(
        tp=tp, pp=pp, vp=vp, cp=cp, ep=ep, etp=etp, dp=dp, sp=sp,
        zero_stage=draw(st.integers(0, 3)), micro_batch=micro_batch,
        global_batch=micro_batch * dp * num_micro,
        recompute=draw(st.sampled_from(("none", "selective", "full"))),
        schedule="interleaved" if vp > 1 else draw(st.sampled_from(("1f1b", "gpipe"))),
        # Megatron overlaps TP communication only under sequence parallelism
        tp_comm_overlap=draw(st.booleans()) and sp, dp_comm_overlap=draw(st.booleans()),
        cpu_offload_optimizer=draw(st.integers(0, 7)) == 0,
    )
    try:
        return TrainingJob(model=m, system=System(gpu=gpu, num_gpus=tp * pp * cp * dp),
                           parallelism=parallel, seq_len=seq_len,
                           precision=draw(st.sampled_from(recipes)))
    except ValidationError:
        reject()


def _with(job: TrainingJob, num_gpus: int | None = None, **changes) -> TrainingJob:
    """The same job with some parallelism fields (and the GPU count) changed, validated again."""
    system = job.system.model_copy(update={"num_gpus": num_gpus or job.system.num_gpus})
    return TrainingJob(model=job.model, system=system,
                       parallelism=job.parallelism.model_copy(update=changes),
                       seq_len=job.seq_len, precision=job.precision)


def _breakdown_sum(est) -> float:
    """The step-time parts as ``flopcast train`` lists them (recompute_s is inside compute_s)."""
    return sum(v for k, v in est.breakdown_s.items() if k != "recompute_s")


@SETTINGS
@given(training_jobs())
def test_higher_zero_stage_never_needs_more_memory(job):
    """ZeRO stage k+1 shards a superset of stage k's states (Rajbhandari et al. 2020 §5), and
    what it gathers back transiently is part of what it sharded: peak memory never rises,
    on either end stage. With one data-parallel rank (dp·cp = 1) and one expert data-parallel
    rank (edp = tp·cp·dp/(etp·ep) = 1) nothing is sharded and every stage is the same."""
    est = [estimate_training(_with(job, zero_stage=z)) for z in range(4)]
    for lower, higher in zip(est, est[1:], strict=False):
        assert higher.memory["total"] <= lower.memory["total"] * (1 + 1e-12)
        for stage in ("first", "last"):
            assert (higher.memory_by_stage[stage]["total"]
                    <= lower.memory_by_stage[stage]["total"] * (1 + 1e-12))
    p = job.parallelism
    if p.dp * p.cp == 1 and p.tp * p.cp * p.dp == p.expert_tp * p.ep:
        assert all(e.memory["total"] == pytest.approx(est[0].memory["total"]) for e in est)


@SETTINGS
@given(training_jobs())
def test_recompute_never_raises_activation_memory(job):
    """Full ≤ selective ≤ none, for the activations of each end stage and for peak memory
    (recomputation only drops stored tensors; Korthikanti et al. 2022 §4-5)."""
    est = [estimate_training(_with(job, recompute=r)) for r in ("none", "selective", "full")]
    for more, less in zip(est, est[1:], strict=False):
        for stage in ("first", "last"):
            assert (less.memory_by_stage[stage]["activations"]
                    <= more.memory_by_stage[stage]["activations"] * (1 + 1e-12))
        assert less.memory["total"] <= more.memory["total"] * (1 + 1e-12)


def _group_tier(size: int, stride: int, domain: int) -> tuple[bool, int]:
    """(inside one NVLink domain, ranks per domain when not) of a group of ``size`` ranks
    spaced ``stride`` apart: what sets its bus bandwidth and latency (physics/comm.py)."""
    per_domain = min(max(1, domain // stride), size)
    inside = size <= per_domain
    return inside, 0 if inside else per_domain


def _keeps_bandwidth_tier(job: TrainingJob, doubled: TrainingJob) -> bool:
    """Whether doubling dp leaves the groups whose size or stride it changes, DP (stride tp)
    and PP (stride tp·cp·dp; Megatron orders ranks TP, CP, DP, PP from innermost), in the
    same bandwidth tier."""
    def tiers(j: TrainingJob):
        p, domain = j.parallelism, j.system.domain_size
        return (_group_tier(p.dp * p.cp, p.tp, domain),
                _group_tier(p.pp, p.tp * p.cp * p.dp, domain))
    return tiers(job) == tiers(doubled)


@SETTINGS
@given(training_jobs(min_dp=2))
def test_doubling_gpus_never_lowers_throughput(job):
    """Doubling dp (and the global batch, so each replica does the same work) never lowers
    the job's tokens/s: compute per replica is unchanged, the optimizer shard shrinks, and a
    ring collective's traffic per rank, 2(n-1)/n·S, grows by less than 2×.

    Generator restricted to where that holds physically: dp ≥ 2 before, since going from no
    data-parallel communication to some can cost more than the compute it shares (DDP over
    PCIe, ZeRO-3 re-gathering every micro-batch across nodes: the measured negative scaling
    of small micro-batches); the same bandwidth tier after, since a group pushed from NVLink
    onto the NICs runs ~10× slower; and a scaled, not a fixed, global batch, since with a
    fixed batch the halved compute can fall below the (constant) gradient all-reduce (Amdahl).
    """
    p = job.parallelism
    doubled = _with(job, num_gpus=2 * job.system.num_gpus, dp=2 * p.dp,
                    global_batch=2 * p.global_batch)
    assume(_keeps_bandwidth_tier(job, doubled))
    assert doubled.num_micro_batches == job.num_micro_batches
    before, after = estimate_training(job), estimate_training(doubled)
    assert after.tokens_per_s >= before.tokens_per_s * (1 - 1e-12)


@SETTINGS
@given(training_jobs())
def test_breakdowns_sum_to_totals(job):
    """What ``flopcast train --json`` reports adds up: memory by kind to the largest stage's
    total, each stage's kinds to its total, the peak to the larger stage; the step-time parts
    (without recompute_s, which compute_s includes) to the step time."""
    est = estimate_training(job)
    mem = est.memory
    assert sum(mem[k] for k in MEMORY_KINDS) == pytest.approx(mem["total"], rel=1e-12)
    stages = est.memory_by_stage
    for kinds in stages.values():
        assert sum(kinds[k] for k in MEMORY_KINDS) == pytest.approx(kinds["total"], rel=1e-12)
        assert all(kinds[k] >= 0 for k in MEMORY_KINDS)
    assert mem["total"] == pytest.approx(max(s["total"] for s in stages.values()), rel=1e-12)
    assert _breakdown_sum(est) == pytest.approx(est.step_time_s, rel=1e-12)
    assert all(v >= 0 for v in est.breakdown_s.values())
    assert est.breakdown_s["recompute_s"] <= est.breakdown_s["compute_s"] * (1 + 1e-12)
    assert est.tokens_per_s == pytest.approx(job.tokens_per_step / est.step_time_s, rel=1e-12)
