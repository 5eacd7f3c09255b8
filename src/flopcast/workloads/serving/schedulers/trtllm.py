"""TensorRT-LLM in-flight batching (Orca's iteration-level scheduling, Yu et al. 2022, as
TensorRT-LLM's batch manager implements it): each iteration takes the generation requests
first, then context requests (chunked when chunked context is on) within max_num_tokens and
max_batch_size (MicroBatchScheduler). Two capacity policies:

- ``MAX_UTILIZATION``: KV blocks are taken as needed and requests are paused (their cache
  dropped, recomputed later) when they run out — what trtllm-bench runs (its
  ExecutorSettingsConfig: chunking=True, scheduler_policy=MAX_UTILIZATION, kv_cache_percent
  0.9, tensorrt_llm/bench/dataclasses/configuration.py);
- ``GUARANTEED_NO_EVICT`` (the runtime's default): a request starts only when blocks for its
  whole prompt + output are free, so nothing is ever paused.
"""

from __future__ import annotations

from flopcast.workloads.serving.schedulers.vllm import ContinuousBatching


class InflightBatching(ContinuousBatching):
    """MAX_UTILIZATION: mixed batches, blocks on demand, pause (recompute) when short."""

    reserve_full = False


class GuaranteedNoEvict(InflightBatching):
    """GUARANTEED_NO_EVICT: KV for the full length reserved at admission."""

    reserve_full = True
