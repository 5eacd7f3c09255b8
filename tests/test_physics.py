import numpy as np
import pytest

from flopcast.physics import comm, flops, memory, pipeline
from flopcast.physics.params import total_parameters
from flopcast.specs import Efficiency, Model, precision


def gpt(layers=96, h=12288, heads=96, vocab=51200, dropout=True):
    """A Narayanan et al. 2021 GPT: plain 4h MLP, no biases counted separately below."""
    return Model(name="gpt", num_layers=layers, hidden_size=h, num_attention_heads=heads,
                 vocab_size=vocab, dropout=dropout)


def test_model_flops_equal_narayanan_formula():
    m, s = gpt(), 2048
    n_layers, h, V = m.num_layers, m.hidden_size, m.vocab_size
    # per sequence
    narayanan = 72 * s * n_layers * h**2 * (1 + s / (6 * h) + V / (12 * n_layers * h))
    assert flops.training_flops_per_token(m, s, "model") * s == pytest.approx(narayanan, rel=1e-9)


def test_hardware_flops_with_full_recompute_equal_96_formula():
    m, s = gpt(), 2048
    n_layers, h, V = m.num_layers, m.hidden_size, m.vocab_size
    expected = 96 * s * n_layers * h**2 * (1 + s / (6 * h) + V / (16 * n_layers * h))
    got = flops.training_flops_per_token(m, s, "hardware", recompute=2) * s
    assert got == pytest.approx(expected, rel=1e-9)


def test_flops_close_to_6n_plus_attention():
    from flopcast.catalog import load_model

    m = load_model("llama-3.1-8b")
    s = 8192
    n_nonembed = total_parameters(m) - m.vocab_size * m.hidden_size  # input lookup: no FLOPs
    six_n = 6 * n_nonembed
    attention = 6 * 2 * m.num_layers * s * m.num_attention_heads * m.head_dim_qk
    assert flops.training_flops_per_token(m, s) == pytest.approx(six_n + attention, rel=0.002)


def test_causal_attention_context_is_half():
    m = gpt()
    assert float(flops.attention_context(m, 4096, causal=True)) == pytest.approx(2048.5)
    assert float(flops.attention_context(m, 4096, causal=False)) == 4096


def test_sliding_window_context_is_capped():
    m = Model(name="w", num_layers=2, hidden_size=64, num_attention_heads=4, vocab_size=10,
              sliding_window=128)
    assert float(flops.attention_context(m, 100_000, causal=False)) == 128
    assert float(flops.attention_context(m, 100_000, causal=True)) < 128


def test_chunked_local_attention_counts_keys_within_each_chunk():
    """Llama 4's chunked layers: a query sees its chunk's earlier keys, so the mean over
    s = 2.5 chunks is (2·c(c+1)/2 + r(r+1)/2)/s causally, and never more than a sliding
    window of the same size gives; a sequence within one chunk is plain causal."""
    kw = dict(num_layers=4, hidden_size=64, num_attention_heads=4, vocab_size=10,
              sliding_window=8, sliding_window_every=0)
    chunked = Model(name="c", local_attention="chunked", **kw)
    sliding = Model(name="s", **kw)
    s = np.array([4.0, 8.0, 20.0, 1000.0])
    keys = flops.attention_context(chunked, s, causal=True)
    assert keys[2] == pytest.approx((2 * 8 * 9 / 2 + 4 * 5 / 2) / 20)
    assert keys[:2] == pytest.approx((s[:2] + 1) / 2)
    assert np.all(keys <= flops.attention_context(sliding, s, causal=True) + 1e-12)
    assert float(flops.attention_context(chunked, 20.0, causal=False)) == pytest.approx(
        (2 * 64 + 16) / 20)


def test_chunked_layers_keep_their_cache_but_read_one_chunk():
    """Capacity is planned for the whole context (engines differ on freeing old chunks);
    a decoding query reads at most one chunk of keys in a chunked layer."""
    from flopcast.physics import kv_cache

    kw = dict(num_layers=4, hidden_size=64, num_attention_heads=4, vocab_size=10,
              sliding_window=8, sliding_window_every=4)
    chunked = Model(name="c", local_attention="chunked", **kw)
    assert float(kv_cache.cached_tokens_per_layer(chunked, 100.0)) == 100.0
    assert float(kv_cache.attended_tokens_per_layer(chunked, 100.0)) == (3 * 8 + 100) / 4


def test_korthikanti_activation_bytes_gpt3():
    """Korthikanti et al. 2022 Eq. (1)-(4) for GPT-3 175B: s=2048, b=1, t=8, a=96."""
    m, s, t = gpt(), 2048, 8
    h, a = m.hidden_size, m.num_attention_heads

    def per_layer(tp, sp, recompute, flash):
        return float(memory.activation_bytes_per_token_layer(m, s, tp, sp, recompute,
                                                             flash_attention=flash)) * s

    assert per_layer(1, False, 0, False) == pytest.approx(s * h * (34 + 5 * a * s / h))
    assert per_layer(t, False, 0, False) == pytest.approx(
        s * h * (10 + 24 / t + 5 * a * s / (h * t)))
    assert per_layer(t, True, 0, False) == pytest.approx(s * h / t * (34 + 5 * a * s / h))
    # selective recompute (Korthikanti §5) == no a·s² terms == FlashAttention
    assert per_layer(t, True, 0, True) == pytest.approx(s * h / t * 34)
    assert per_layer(t, True, 2, True) == pytest.approx(2 * s * h / t)  # full: layer input


def test_sixteen_bytes_per_parameter_before_sharding():
    w, g, o = memory.model_state_bytes(1e9, 0.0, precision("bf16"), 0, 64, 64)
    assert float(w + g + o) == pytest.approx(16e9)


def test_more_zero_never_increases_memory():
    totals = [float(sum(memory.model_state_bytes(7e9, 1e9, precision("bf16"), z, 8, 4)))
              for z in range(4)]
    assert totals == sorted(totals, reverse=True)
    # ZeRO-3: all 16 bytes sharded, dense over 8 ranks, experts over 4
    assert totals[3] == pytest.approx(16 * (7e9 / 8 + 1e9 / 4))


def test_more_tp_never_increases_weight_bytes():
    from flopcast.catalog import load_model

    m = load_model("llama-3.1-70b")
    tps = np.array([1, 2, 4, 8])
    first, last, expert = memory.stage_param_counts(m, tps, 1, 1)
    assert np.all(np.diff(first) < 0) and np.all(np.diff(last) < 0)


def test_bubble_formulas():
    assert float(pipeline.bubble_fraction(4, 8)) == pytest.approx(3 / 8)
    assert float(pipeline.bubble_fraction(4, 8, vp=3)) == pytest.approx(1 / 8)
    assert float(pipeline.pipeline_time(1.0, 4, 8)) == pytest.approx(11)
    assert float(pipeline.bubble_fraction(1, 8)) == 0


def test_uneven_stages_follow_the_most_loaded_rank():
    assert float(pipeline.layers_per_stage(96, 8)) == 12
    assert float(pipeline.layers_per_stage(126, 16)) == 8          # Llama-3.1-405B on PP16
    assert float(pipeline.layers_per_stage(61, 16, 2)) == 2 * 2    # DeepSeek-V3, vp=2
    assert float(pipeline.layers_per_stage(96, 8, 3)) == 12


def test_micro_batches_in_flight_by_schedule():
    args = (8, 64, 2)
    assert float(pipeline.micro_batches_in_flight(*args, 0)) == 8  # 1F1B: p
    assert float(pipeline.micro_batches_in_flight(*args, 2)) == 64  # GPipe: m
    assert float(pipeline.micro_batches_in_flight(*args, 1)) == pytest.approx(8 * (1 + 7 / 16))


def test_ring_collectives():
    assert float(comm.all_reduce_time(8e9, 8, 1e11, 0)) == pytest.approx(2 * 7 / 8 * 0.08)
    assert float(comm.all_gather_time(8e9, 8, 1e11, 0)) == pytest.approx(7 / 8 * 0.08)
    assert float(comm.all_reduce_time(8e9, 1, 1e11, 1e-5)) == 0


def test_group_bandwidth_two_levels():
    eff = Efficiency(nvlink_fraction=1.0, network_fraction=1.0)
    nvl, nic = 450e9, 50e9
    # 8 ranks inside one 8-GPU domain: NVLink
    assert float(comm.group_bandwidth(8, 1, 8, nvl, nic, eff)) == nvl
    # 64 ranks, 8 per domain: 8 NICs carry the rings
    assert float(comm.group_bandwidth(64, 1, 8, nvl, nic, eff)) == 8 * nic
    # stride 8 (DP over TP=8): one rank per domain, one NIC
    assert float(comm.group_bandwidth(16, 8, 8, nvl, nic, eff)) == nic


def test_functions_broadcast_over_arrays():
    tps = np.array([1, 2, 4, 8])
    out = memory.activation_bytes_per_token_layer(gpt(), 2048, tps, True, 0)
    assert out.shape == (4,) and np.all(np.diff(out) < 0)
