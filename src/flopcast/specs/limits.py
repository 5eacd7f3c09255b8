"""Physical ranges of inputs: values beyond them describe no model or cluster that exists or
is planned, and would only make a search unbounded or a float overflow.

Each physical bound sits orders of magnitude above the largest real value (cited), so no real
question is refused; MAX_REQUESTS is a run-time cap instead (a longer trace is better split). A
value beyond one gets a one-line error naming the field, the value and the bound.
"""

#: Transformer layers. Largest published dense/MoE models have ≤ 128 (Llama 3.1 405B: 126;
#: Dubey et al. 2024 Table 3).
MAX_LAYERS = 4096
#: Hidden size, FFN width, head dim. Largest published hidden size 25,600 (Megatron-LM 1T,
#: Narayanan et al. 2021 Table 1); FFN widths reach ~ 100K.
MAX_WIDTH = 2**21
#: Attention heads and KV heads (Megatron-LM 1T: 160).
MAX_HEADS = 2**16
#: Vocabulary (Gemma: 256K; Team Gemma 2024).
MAX_VOCAB = 2**24
#: Tokens of one sequence or context window (Llama 4 Scout: 10M; Meta 2025).
MAX_SEQ_LEN = 2**30
#: Routed experts per layer (DeepSeek-V3: 256; fine-grained MoE studies go to a few thousand).
MAX_EXPERTS = 2**16
#: GPUs in one job or cluster (largest announced training clusters: ~ 100-200K GPUs).
MAX_GPUS = 2**22
#: Sequences in one global batch or one inference batch.
MAX_BATCH = 2**24
#: Training budget in tokens (Llama 3: 15.6T; Qwen3: 36T).
MAX_TRAINING_TOKENS = 1e18
#: Price of one GPU-hour in USD (on-demand H100 ~ $2-12; B200 list prices below $20).
MAX_PRICE_USD_PER_GPU_HOUR = 1e4
#: Days of a deadline (a century).
MAX_DAYS = 36_500.0
#: Requests in one simulation (a 10⁶-request run takes about 80 s; docs/serving.md speed).
MAX_REQUESTS = 10**6
#: Request rate, requests/s (the largest public LLM services report ~ 10⁴-10⁵ req/s in all).
MAX_REQUEST_RATE = 1e6
#: Slowest request rate, requests/s (one request per 11.6 days): the simulated clock is float64
#: seconds, and a million arrivals this sparse still place latencies to ~0.1 ms; far slower
#: rates lose the per-token times in rounding (TPOT of 0).
MIN_REQUEST_RATE = 1e-6
#: Coefficient of variation of inter-arrival gaps (production traces: 1-10; Azure LLM traces).
MAX_ARRIVAL_CV = 1000.0
#: Tokens per engine iteration (max_num_tokens); engines default to 2K-16K.
MAX_STEP_TOKENS = 2**22
