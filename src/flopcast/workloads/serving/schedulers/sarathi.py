"""Sarathi-Serve stall-free batching (Agrawal et al. 2024 §4): decodes first, then prompt
chunks fill a small per-iteration token budget, so a long prompt never stalls running
decodes for more than one budget's worth of work. The same policy as vLLM's chunked prefill
with the budget set for the latency target (the paper uses 512 or 2048 tokens)."""

from __future__ import annotations

from flopcast.workloads.serving.schedulers.vllm import ContinuousBatching

#: Sarathi-Serve's token budget when the engine sets none smaller (paper §5: 512 for strict
#: TBT SLOs).
DEFAULT_TOKEN_BUDGET = 512


class SarathiServe(ContinuousBatching):
    """Continuous batching with a token budget of at most ``DEFAULT_TOKEN_BUDGET``."""

    def __init__(self, limits):
        budget = min(limits.max_tokens, limits.chunk_tokens or DEFAULT_TOKEN_BUDGET)
        super().__init__(type(limits)(limits.max_seqs, budget, budget, limits.batch_size))
