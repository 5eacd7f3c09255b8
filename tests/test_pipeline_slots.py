"""Embedding and loss as pipeline stages (Megatron-Core --account-for-embedding-in-pipeline-split
and --account-for-loss-in-pipeline-split; E/L/m of --pipeline-model-parallel-layout)."""

import pytest
from pydantic import ValidationError

from flopcast import estimate_training
from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.hf_config import model_from_hf_config
from flopcast.physics import pipeline
from flopcast.specs import Model, Parallelism, System, TrainingJob
from flopcast.workloads.training import Layout


def job(model, gpus, **par):
    m = load_model(model) if isinstance(model, str) else model
    return TrainingJob(model=m, system=System(gpu=load_gpu("h100-sxm"), num_gpus=gpus),
                       parallelism=Parallelism(**par), seq_len=4096)


def test_deepseek_v3_pp16_vp4_is_accepted():
    # 61 layers + embedding + MTP + loss = 64 slots = PP16·VP4, one slot per model chunk
    j = job("deepseek-v3", 1024, tp=2, pp=16, vp=4, ep=64, etp=1, global_batch=8192)
    assert j.parallelism.embedding_loss_stages is True
    assert j.pipeline_extra_slots == 3
    assert Layout.from_job(j).extra_slots.tolist() == [3]
    est = estimate_training(j)
    assert est.step_time_s > 0 and est.config["embedding_loss_stages"] is True


def test_llama_405b_pp_vp_128_counts_embedding_and_loss():
    j = job("llama-3.1-405b", 128, tp=8, pp=16, vp=8, global_batch=64)
    assert j.pipeline_extra_slots == 2
    assert estimate_training(j).step_time_s > 0


def test_slots_give_the_most_loaded_rank():
    assert float(pipeline.layers_per_stage(126, 16, 8, extra_slots=2)) == 8
    assert float(pipeline.layers_per_stage(61, 16, 4, extra_slots=3)) == 4
    assert float(pipeline.layers_per_stage(4, 1, 1, extra_slots=2)) == 4  # never more than L
    assert float(pipeline.layers_per_stage(96, 8)) == 12  # off: unchanged


def test_automatic_only_when_needed():
    j = job("llama-3.1-8b", 8, pp=8, global_batch=64)
    assert j.parallelism.embedding_loss_stages is False and j.pipeline_extra_slots == 0


def tiny(layers=5):
    return Model(name="tiny", num_layers=layers, hidden_size=256, num_attention_heads=4,
                 vocab_size=1000)


def test_pp_vp_beyond_layers_plus_two_is_refused():
    with pytest.raises(ValidationError, match=r"pp·vp \(8\) must be at most num_layers \+ "
                       r"embedding \+ loss \(5 \+ 1 \+ 1 = 7\)"):
        job(tiny(), 4, pp=4, vp=2)  # 8 = L + 3


def test_explicit_off_keeps_the_layer_limit():
    with pytest.raises(ValidationError, match=r"pp·vp \(6\) must be at most num_layers \(5\); "
                       r"with embedding_loss_stages on, at most .* \(7\)"):
        job(tiny(), 3, pp=3, vp=2, embedding_loss_stages=False)
    assert job(tiny(), 3, pp=3, vp=2).parallelism.embedding_loss_stages is True


def test_hf_config_reads_mtp_layers():
    cfg = {"model_type": "deepseek_v3", "num_hidden_layers": 4, "hidden_size": 256,
           "num_attention_heads": 4, "intermediate_size": 512, "vocab_size": 1000,
           "kv_lora_rank": 32, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16,
           "v_head_dim": 32, "num_nextn_predict_layers": 1}
    assert model_from_hf_config(cfg).mtp_num_layers == 1
