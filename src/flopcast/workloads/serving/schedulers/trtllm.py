"""TensorRT-LLM in-flight batching (Yu et al. 2022 Orca's iteration-level scheduling as
TensorRT-LLM implements it): context and generation requests share an iteration within
max_num_tokens and max_batch_size; a context is not chunked unless chunked context is on; the
default GUARANTEED_NO_EVICT capacity policy admits a request only when blocks for its whole
prompt + output are free, so nothing is ever preempted."""

from __future__ import annotations

from flopcast.workloads.serving.schedulers.vllm import ContinuousBatching


class InflightBatching(ContinuousBatching):
    """Mixed batches, whole contexts, KV reserved for the full length at admission."""

    reserve_full = True
