"""One inference forward step (any mix of prefill and decode tokens) and the memory plan.

A step runs every layer once over M = prefill tokens + decoding sequences rows:
- weight GEMMs by the kernel model (physics/kernels.py, via physics/layer.py) with the
  weight format's bytes and peak
  (decode at small M is the "flat GEMM" regime, Hong et al. 2024 FlashDecoding++ §3: bound
  by streaming the weights, which the memory term captures);
- routed experts touch E·(1 - (1 - k/E)^M) distinct experts for M tokens (each token picks k
  of E), so a small decode batch reads only those experts' weights;
- attention: prefill at FlashAttention efficiency on causal FLOPs; decode streams each
  sequence's KV cache from HBM (Dao et al. 2023, Flash-Decoding);
- two tensor-parallel all-reduces per layer (Shoeybi et al. 2019 §3) with a fixed small-
  message latency (one-shot custom all-reduce); when experts span data-parallel attention
  replicas (ep > tp), the engine's token exchange per MoE layer (all-to-all, or all-gather
  + reduce-scatter: Engine.expert_dispatch); a batch crosses
  the pipeline stages one after another (steady-state serving keeps pp micro-batches in
  flight: see estimate.py); the LM head only for rows that sample a token;
- a fixed per-step engine overhead;
- the engine's host CPU time per scheduled sequence (Engine.host_s_per_sequence), exposed
  beyond the GPU's step under overlapped scheduling (``host_exposed_s``).
All workload arguments may be NumPy arrays and broadcast.
"""

from __future__ import annotations

import numpy as np

from flopcast.physics import comm, layer
from flopcast.physics import flops as F
from flopcast.physics import params as P
from flopcast.physics.kv_cache import sequence_kv_bytes
from flopcast.physics.memory import layer_param_counts
from flopcast.physics.pipeline import layers_per_stage
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.inference import InferenceJob

GIB = 2**30


def compute_dtype(job: InferenceJob) -> str:
    """16-bit type of attention, norms and the LM head: fp16 for fp16 weights, else bf16."""
    return "fp16" if job.weights.gemm_dtype == "fp16" else "bf16"


def inference_numerics(job: InferenceJob) -> layer.Numerics:
    """Number formats of a deployment: W8A8/W4A4 formats (fp8, int8, nvfp4) quantise the
    activations too; weight-only formats (w4a16, …) multiply 16-bit activations."""
    w = job.weights
    quantised_acts = not w.weight_only and w.gemm_dtype in ("fp8", "int8", "fp4")
    gemm_in = w.weight_bytes if quantised_acts else w.activation_bytes
    return layer.Numerics(w.gemm_dtype, compute_dtype(job), gemm_in, w.weight_bytes,
                          w.activation_bytes, w.weight_only,
                          cast_bytes=w.weight_bytes if quantised_acts else 0.0)


def placement(job: InferenceJob) -> layer.Placement:
    """Expert parallelism inside the TP group (ep ≤ tp: experts split ep ways, each expert's
    weights tp/ep ways, tokens shared) or across replicas (attention data-parallel + EP, as
    DeepSeek/SGLang/TRT-LLM deploy: each replica brings its own tokens)."""
    return layer.Placement(tp=job.tp, sp=False, cp=1, ep=job.ep, etp=job.expert_tp)


def attention_backends(job: InferenceJob) -> tuple[str, str]:
    """The engine's prefill and decode attention kernels where the GPU's profile has them,
    else the profile's defaults; the decode kernel may depend on the GQA group per rank."""
    prof = job.system.gpu.kernels
    prefill = job.engine.attention_backend
    q_heads, kv_heads = layer.attention_heads(job.model, job.tp)
    # MLA decodes with its own kernels (absorbed latent), not by a GQA group rule
    group = None if job.model.is_mla else int(q_heads) // int(kv_heads)
    decode = job.engine.decode_backend_for(group, kv_8bit=job.kv_element_bytes < 2)
    return (prefill if prefill in prof.attention else prof.default_attention,
            decode if decode in prof.decode_attention else prof.default_decode_attention)


def kv_heads_per_gpu_share(job: InferenceJob) -> float:
    """Share of one layer's KV cache each TP rank holds: 1/tp, or 1/kv_heads when the KV heads
    are replicated (tp > kv_heads); MLA's latent is replicated on every rank."""
    m = job.model
    if m.is_mla:
        return 1.0
    return 1.0 / min(job.tp, m.kv_heads)


def chunk_context(model, offset, chunk):
    """Mean keys per query row of a causal chunk of ``chunk`` tokens after ``offset`` cached
    ones: the keys of rows offset+1 … offset+chunk, i.e. the difference of two prefixes'
    totals (sliding windows capped per local layer by flops.attention_context)."""
    o = np.asarray(offset, dtype=float)
    end = o + chunk
    total = end * F.attention_context(model, end, causal=True)
    before = o * F.attention_context(model, np.maximum(o, 1.0), causal=True)
    return (total - before) / chunk


def forward_step(job: InferenceJob, eff: Efficiency, prefill_tokens=0, prefill_len=1,
                 decode_seqs=0, decode_context=0, logit_rows=1,
                 prefill_offset=0, scheduled=True) -> dict[str, np.ndarray]:
    """Seconds of one step, by part, priced by physics/layer.py. ``prefill_len``: tokens of
    each prefilled chunk, starting at ``prefill_offset`` cached tokens (chunked prefill);
    ``decode_context``: tokens cached per decoding sequence; ``scheduled``: the step goes
    through the engine's scheduler (``batch_step``)."""
    prefill_tokens = np.asarray(prefill_tokens, dtype=float)
    chunk = np.maximum(np.asarray(prefill_len, dtype=float), 1.0)
    batch = layer.Batch(
        prefill_tokens=prefill_tokens,
        prefill_context=chunk_context(job.model, prefill_offset, chunk),
        prefill_sequences=np.maximum(prefill_tokens / chunk, 1.0),
        decode_seqs=decode_seqs, decode_context=decode_context)
    return batch_step(job, eff, batch, logit_rows, scheduled)


LAYER_PARTS = ("gemm_s", "attention_s", "elementwise_s", "tp_comm_s", "ep_comm_s")


def host_exposed_s(job: InferenceJob, gpu_s, sequences):
    """Seconds the engine's host work adds to a step of ``gpu_s`` GPU seconds over
    ``sequences`` scheduled sequences (decoding plus prefilled), on one scheduling rank.

    The executor spends Engine.host_s_per_sequence per sequence each iteration (scheduling,
    KV-block bookkeeping, sampling and responses). A synchronous loop adds it to the step;
    an overlap scheduler prepares iteration k+1 while the GPU runs k (SGLang's zero-overhead
    scheduler, Zheng et al. 2024 v0.4; TensorRT-LLM's overlap scheduler), so the step is
    max(GPU, host) and only max(0, host − GPU) shows. Where it binds, a replica produces
    1/host_s_per_sequence tokens/s whatever its batch. A pipelined replica hides it only if
    its pipeline loop overlaps too (Engine.pipeline_overlap_scheduling)."""
    host = job.engine.host_s_per_sequence * np.asarray(sequences, dtype=float)
    if job.engine.hides_host_time_at(job.pp):
        return np.maximum(host - np.asarray(gpu_s, dtype=float), 0.0)
    return host


def scheduled_sequences(batch: layer.Batch):
    """Sequences an iteration schedules: every decoding one, plus the prefilled chunks
    (none when the step prefills nothing)."""
    prefill = np.where(np.asarray(batch.prefill_tokens) > 0, batch.prefill_sequences, 0.0)
    return np.asarray(batch.decode_seqs, dtype=float) + prefill


def slotted_host_s(job: InferenceJob, gpu_s, sequences, slots=1):
    """Host time ``gpu_s`` GPU seconds spread over ``slots`` pipeline slots expose when each
    slot's stage rank schedules ``sequences`` (``host_exposed_s`` against the slot's share)."""
    m = np.asarray(slots, dtype=float)
    return m * host_exposed_s(job, np.asarray(gpu_s, dtype=float) / m, sequences)


def with_host_time(job: InferenceJob, step: dict, sequences, slots=1) -> dict:
    """``step`` (GPU time only, e.g. ``scheduled=False`` steps combined or paced) plus the
    host time it exposes over ``slots`` pipeline slots (``slotted_host_s``)."""
    exposed = slotted_host_s(job, step["step_s"], sequences, slots)
    return {**step, "host_s": step.get("host_s", 0.0) + exposed,
            "step_s": step["step_s"] + exposed}


def pipeline_paced(job: InferenceJob, step: dict, in_flight=None) -> dict:
    """One step of a micro-batch when ``in_flight`` micro-batches (default pp; at most pp)
    share the pipeline, from the ``batch_step`` breakdown of that micro-batch crossing every
    stage in turn (steady-state serving).

    Each stage works on one micro-batch at a time, so a micro-batch advances once every
    m = in_flight slots of the slowest stage, and never faster than it crosses all stages
    (GPipe, Huang et al. 2019 §2.2; training prices its stages by the slowest one too,
    ``physics.pipeline.pipeline_time``). The slowest stage is taken as ⌈L/pp⌉ layers
    (``physics.pipeline.layers_per_stage``) plus the LM head and sampling of the last stage,
    one hop (the last sends the sampled tokens back to the first) and the engine's per-step
    overhead, which every stage pays per micro-batch; when pp does not divide L, engines
    that put the extra layers elsewhere (vLLM, TensorRT-LLM) run a slot a little shorter.
    So the step is max(crossing, m slots): layers × m·⌈L/pp⌉/L, LM head, hop and overhead
    × m. Pass GPU-only steps (``scheduled=False``) and add the host time per slot after
    (``with_host_time``): host time hides behind the slot, not the crossing. With pp = 1 the
    breakdown is returned unchanged."""
    pp = job.pp
    if pp == 1:
        return step
    m = np.clip(np.asarray(pp if in_flight is None else in_flight, dtype=float), 1, pp)
    times = {"lm_head_s": m, "pp_comm_s": m / (pp - 1), "overhead_s": m, "host_s": m}
    stage_share = float(layers_per_stage(job.model.num_layers, pp)) / job.model.num_layers
    times.update({k: m * stage_share for k in LAYER_PARTS})
    unknown = set(step) - set(times) - {"step_s"}
    if unknown:  # a part batch_step gained must say how it paces, not vanish from step_s
        raise ValueError(f"pipeline_paced: no pacing rule for {sorted(unknown)}")
    paced = {k: times[k] * step[k] for k in times if k in step}
    slots = sum(paced.values())
    crossing = slots < step["step_s"]
    out = {k: np.where(crossing, step[k], paced[k]) for k in paced}
    out["step_s"] = np.maximum(slots, step["step_s"])
    return out


def graph_max_decode_seqs(job: InferenceJob) -> int:
    """Largest decode-only batch (sequences per replica) the engine replays as a captured
    CUDA graph; 0 when the engine entry prices none so (Engine.decode_cuda_graphs: on for
    TensorRT-LLM from 0.12 and SGLang from 0.4; vLLM captures graphs too but is priced
    eagerly, see its entry). A step with prefill always runs eagerly."""
    engine = job.engine
    if not engine.decode_cuda_graphs:
        return 0
    return engine.cuda_graph_max_batch or engine.max_batch_size


def graph_efficiency(eff: Efficiency) -> Efficiency:
    """``eff`` for a step replayed as a CUDA graph: each kernel pays the graph share of its
    fixed cost (Efficiency.graph_fixed_cost_scale) instead of the eager one."""
    return eff.updated(kernel_fixed_cost_scale=eff.graph_fixed_cost_scale)


def graph_replayed(job: InferenceJob, decode_seqs):
    """Whether a decode-only step of ``decode_seqs`` sequences replays a CUDA graph
    (broadcasts over arrays)."""
    seqs = np.asarray(decode_seqs)
    return (seqs > 0) & (seqs <= graph_max_decode_seqs(job))


def decode_efficiency(job: InferenceJob, eff: Efficiency, decode_seqs: int) -> Efficiency:
    """The efficiency a decode-only step of ``decode_seqs`` sequences is priced with."""
    return graph_efficiency(eff) if graph_replayed(job, decode_seqs) else eff


def _priced(job: InferenceJob, eff: Efficiency):
    """The system with ``eff`` in place, number formats, placement, attention kernels and
    the fixed-cost scale: what every layer-model call of a deployment takes."""
    gpu = job.system.gpu.model_copy(update={"efficiency": eff})
    system = job.system.model_copy(update={"gpu": gpu})
    return system, inference_numerics(job), placement(job), attention_backends(job)


def engine_all_reduce(job: InferenceJob):
    """The engine's measured all-reduce on this GPU (its kernel profile), or None: an engine
    running NCCL's ring (custom_allreduce false), a GPU without NVLink (the measurement is
    of NVLink; e.g. a `flopcast profile` entry, which records no NVLink), or a family without
    the measurement."""
    gpu = job.system.gpu
    if not job.engine.custom_allreduce or not gpu.nvlink_bandwidth:
        return None
    return gpu.kernels.engine_all_reduce


def attention_step_s(job: InferenceJob, eff: Efficiency, batch: layer.Batch):
    """Attention of one step over all layers (the serving simulator tabulates this part
    apart from the rest; ``batch_step`` includes the same number)."""
    system, num, place, (prefill, decode) = _priced(job, eff)
    return job.model.num_layers * layer.attention_time(
        job.model, system.gpu, place, num, batch, job.kv_element_bytes, prefill, decode,
        eff.kernel_fixed_cost_scale)


def batch_step(job: InferenceJob, eff: Efficiency, batch: layer.Batch,
               logit_rows=1, scheduled=True) -> dict[str, np.ndarray]:
    """Seconds of one step over any ``layer.Batch`` (prefill chunks of several requests at
    their own offsets plus decoding sequences: what a serving iteration runs), by part: every
    layer once, the LM head for ``logit_rows``, the pipeline hops, the engine's step overhead
    and the host time it exposes (``host_s``: ``host_exposed_s``). ``scheduled`` False: a
    static batch run by a session runtime (a loop over steps with no per-request scheduler,
    e.g. TensorRT-LLM's gptSessionBenchmark), which pays no per-sequence host time."""
    m = job.model
    system, num, place, (prefill_backend, decode_backend) = _priced(job, eff)
    gpu = system.gpu
    fixed = eff.kernel_fixed_cost_scale
    parts = {}
    moe_fraction = m.num_moe_layers / m.num_layers
    for moe, share in ((False, 1 - moe_fraction), (True, moe_fraction)):
        if share == 0:
            continue
        cost = layer.layer_cost(m, system, eff, place, num, batch, moe, job.kv_element_bytes,
                                prefill_backend, decode_backend, fixed,
                                expert_dispatch=job.engine.expert_dispatch,
                                engine_all_reduce=engine_all_reduce(job))
        for k, v in cost.items():
            parts[k] = parts.get(k, 0.0) + share * v
    head = layer.lm_head_time(m, gpu, num, logit_rows, job.tp, fixed)
    domain = system.domain_size
    pp_bw = comm.group_bandwidth(job.pp, job.tp, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    pp_comm = (job.pp - 1) * comm.p2p_time(batch.rows * m.hidden_size * num.act_bytes, pp_bw,
                                           system.network_latency_s)
    layers = m.num_layers  # pp stages run in turn, so a batch crosses all layers' time
    per_layer = sum(parts.values())
    gpu_total = layers * per_layer + head + pp_comm + eff.inference_step_overhead_s
    host = host_exposed_s(job, gpu_total, scheduled_sequences(batch)) if scheduled else 0.0
    out = dict(
        step_s=gpu_total + host, gemm_s=layers * parts["gemm"],
        attention_s=layers * parts["attention"],
        elementwise_s=layers * parts["elementwise"], tp_comm_s=layers * parts["tp_comm"],
        ep_comm_s=layers * parts["ep_comm"], lm_head_s=head, pp_comm_s=pp_comm,
        overhead_s=eff.inference_step_overhead_s, host_s=host,
    )
    shape = np.broadcast_shapes(*(np.shape(v) for v in out.values()))
    return {k: np.broadcast_to(np.asarray(v, dtype=float), shape) for k, v in out.items()}


def weight_bytes_per_gpu(job: InferenceJob) -> float:
    """Linear-layer weights in the job's format, embeddings and norms in 16 bits, over tp·pp;
    routed experts over expert_shards·pp (max(tp, ep): more than tp when ep spans replicas)."""
    m = job.model
    edge = P.embedding_params(m) + P.head_params(m)
    experts = m.num_layers * layer_param_counts(m)[1]
    body = P.total_parameters(m) - edge - experts
    wb = job.weights.weight_bytes
    return ((body * wb + edge * 2.0) / job.tp + experts * wb / job.expert_shards) / job.pp


def max_sequences_in_flight(job: InferenceJob, eff: Efficiency) -> int:
    """The engine's default limit on sequences in flight per replica: its max_batch_size, or,
    where it derives the limit from its KV cache (Engine.max_batch_from_kv, SGLang), that
    rule applied to the KV tokens this job's memory plan leaves (``memory_plan``)."""
    if job.engine.max_batch_from_kv is None:
        return job.engine.max_batch_size
    plan = memory_plan(job, eff, job.engine.kv_block_tokens)
    return int(np.asarray(plan["engine_max_sequences"]))


def derived_max_sequences(rule, kv_tokens, context_len: int):
    """SGLang's default --max-running-requests (Engine.max_batch_from_kv): a request pool of
    min(max(KV tokens / context_len · requests_per_context, floor), ceiling) and at most
    min(KV tokens · kv_token_share, pool + pool_slack) running (model_runner.py, tp_worker.py,
    0.4.1); context_len is the model's longest context. Array-valued."""
    kv_tokens = np.asarray(kv_tokens, dtype=float)
    pool = np.clip(np.floor(kv_tokens / context_len * rule.requests_per_context),
                   rule.floor, rule.ceiling)
    return np.maximum(1, np.minimum(np.floor(kv_tokens * rule.kv_token_share),
                                     pool + rule.pool_slack))


def memory_plan(job: InferenceJob, eff: Efficiency, context) -> dict[str, np.ndarray]:
    """Weights, workspace, KV budget and how many sequences of ``context`` tokens fit per GPU.

    The paged KV cache gets what the engine's memory share leaves (Engine.memory_fraction_of):
    a share of the memory free after weights, runtime reserve and step workspace (TensorRT-LLM
    free_gpu_memory_fraction), or a share of all memory less those (vLLM
    gpu_memory_utilization), or less weights and reserve only (SGLang mem_fraction_static:
    activations live outside it); sequences occupy whole pages. ``engine_max_sequences`` is
    the engine's limit on sequences in flight: max_batch_size, or derived from the KV tokens
    (``derived_max_sequences``), which also sizes the logits workspace.
    """
    m, gpu, engine = job.model, job.system.gpu, job.engine
    weights = weight_bytes_per_gpu(job)
    act = job.weights.activation_bytes
    # step workspace: activations of max_num_tokens rows (hidden, QKV, MLP up) and fp32 logits
    # of one row per sequence in flight
    up = (2 if m.mlp == "swiglu" else 1) * (m.ffn_hidden if not m.is_moe else
                                            m.moe_top_k * m.moe_ffn_hidden_size)
    activations = engine.max_num_tokens * act * (4 * m.hidden_size + up / job.tp)
    share = engine.memory_share(job.tp * job.pp)
    reserved = eff.runtime_reserved_bytes
    kv_share = kv_heads_per_gpu_share(job) / job.pp
    most = engine.max_batch_size
    if engine.memory_fraction_of == "static":  # the KV pool does not depend on the workspace
        kv_budget = np.maximum(gpu.hbm_bytes * share - weights - reserved, 0)
        if engine.max_batch_from_kv is not None:
            block = engine.kv_block_tokens
            block_bytes = sequence_kv_bytes(m, block, job.kv_element_bytes, block) * kv_share
            most = derived_max_sequences(engine.max_batch_from_kv,
                                         np.floor(kv_budget / block_bytes) * block,
                                         m.max_position_embeddings)
    workspace = activations + most * 4 * m.vocab_size / job.tp
    if engine.memory_fraction_of == "free":
        kv_budget = np.maximum((gpu.hbm_bytes - weights - reserved - workspace) * share, 0)
    elif engine.memory_fraction_of == "total":
        kv_budget = np.maximum(gpu.hbm_bytes * share - weights - reserved - workspace, 0)
    per_seq = (sequence_kv_bytes(m, context, job.kv_element_bytes, engine.kv_block_tokens)
               * kv_share)
    max_seqs = np.floor(kv_budget / per_seq)
    return dict(weights_bytes=weights, workspace_bytes=workspace,
                engine_max_sequences=most,
                reserved_bytes=eff.runtime_reserved_bytes, kv_budget_bytes=kv_budget,
                kv_bytes_per_sequence=per_seq, max_sequences=max_seqs,
                capacity_bytes=gpu.hbm_bytes)
