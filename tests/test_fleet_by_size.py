"""Mélange's size-based allocation (workloads/serving/fleet.py, routers.BySize): size buckets,
the two-type assignment, the router, and the fleet plan that may use them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.serving import fleet
from flopcast.workloads.serving.run import deployment_for, serve
from flopcast.workloads.serving.workload import Requests


def bimodal(n=200, big_share=0.25, seed=0, small=(50, 50), big=(3000, 300)):
    rng = np.random.default_rng(seed)
    is_big = rng.random(n) < big_share
    inp = np.where(is_big, big[0], small[0]).astype(np.int64)
    out = np.where(is_big, big[1], small[1]).astype(np.int64)
    return Requests(np.cumsum(rng.exponential(0.1, n)), inp, out)


def test_buckets_cover_every_size_once_and_split_a_bimodal_mix():
    reqs = bimodal()
    buckets = fleet.size_buckets(reqs)
    assert len(buckets) == 2  # quantile cuts would all fall on the small mode
    assert sum(share for *_, share in buckets) == pytest.approx(1.0)
    size = reqs.input_len + reqs.output_len
    inside = [((size >= lo) & (size < hi)).sum() for lo, hi, _ in buckets]
    assert sum(inside) == size.size
    assert [hi for _, hi, _ in buckets[:-1]] == [lo for lo, _, _ in buckets[1:]]


def _option(name, price, whole, per_bucket):
    return fleet.ReplicaOption(name, None, price, whole, tuple(per_bucket))


def test_assignment_fills_the_relatively_strongest_buckets_first():
    # a is 10x b on bucket 0, as good on bucket 1: one a takes bucket 0 (0.5 of it), then
    # half a replica's worth of bucket 1 (5 req/s at 1 req/s per replica = 10 % of it)
    shares, n_b = fleet._assign_by_size((10.0, 1.0), (1.0, 1.0), (5.0, 5.0), 1)
    assert shares == pytest.approx([1.0, 0.1])
    assert n_b == 5  # 4.5 req/s of bucket 1 at 1 req/s each
    # load no type can take is infeasible
    assert fleet._assign_by_size((1.0, 0.0), (1.0, 0.0), (1.0, 1.0), 1)[1] is None


def test_cheapest_by_size_mixes_where_each_type_is_cheap_on_its_sizes():
    """Type small serves small requests cheaply and cannot serve large ones; type large
    serves both at a high price: the size-routed fleet puts the small requests on small."""
    buckets = [(10, 100, 0.8), (100, 5000, 0.2)]
    small = _option("small", 1.0, 0.0, (10.0, 0.0))
    large = _option("large", 10.0, 5.0, (20.0, 2.0))
    counts, ranges = fleet._cheapest_by_size([small, large], buckets, rate=20.0)
    # 16 req/s of small requests: 2 small replicas (cap 10); 4 req/s of large ones: 2 large
    # (cap 2); $22/h against 4 large replicas ($40/h) for the whole mix at 5 req/s each
    assert counts == {0: 2, 1: 2}
    assert ranges == {0: ((10, 100, 1.0),), 1: ((100, 5000, 1.0),)}
    assert fleet._cheapest_mix([small, large], 20.0, mixed=True) == {1: 4}


def test_a_size_routed_fleet_grows_the_pool_closest_to_its_capacity():
    """Top-ups of a size-routed fleet go to the pool whose sizes load it most per replica,
    not to the type cheapest on the whole mix (which may be the idle one)."""
    buckets = [(10, 100, 0.8), (100, 5000, 0.2)]
    small = _option("small", 1.0, 0.0, (10.0, 0.0))
    large = _option("large", 10.0, 5.0, (20.0, 2.0))
    ranges = {0: ((10, 100, 1.0),), 1: ((100, 5000, 1.0),)}
    # 16 req/s of small requests on 2 small replicas (0.8 of capacity each), 4 req/s of
    # large ones on 3 large replicas (0.67): the small pool is the busier
    assert fleet._busiest_pool([small, large], {0: 2, 1: 3}, ranges, buckets, 20.0) == 0
    # on 2 large replicas the large pool runs at 1.0 of capacity
    assert fleet._busiest_pool([small, large], {0: 2, 1: 2}, ranges, buckets, 20.0) == 1


@pytest.fixture(scope="module")
def pools():
    jobs = [InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                         system=System(gpu=load_gpu(g), num_gpus=n))
            for g, n in (("l4", 2), ("h100-sxm", 1))]
    return [deployment_for(j) for j in jobs]


def test_router_sends_each_size_to_its_pool_in_the_given_shares(pools):
    l4, h100 = pools
    split = 100 + 100  # sizes below go to L4, above to the H100; 50/50 of the small ones
    l4 = replace(l4, router="by-size", size_ranges=((0, split, 0.5),))
    h100 = replace(h100, router="by-size", size_ranges=((0, split, 0.5), (split, 10**6, 1.0)))
    reqs = bimodal(small=(50, 50), big=(3000, 300))
    res = serve([l4, h100], reqs)[1]
    replica = np.asarray(res.requests.replica)
    on_h100 = replica == 2  # replicas 0, 1 are the L4 pool's, 2 the H100's
    big = (reqs.input_len + reqs.output_len) >= split
    assert on_h100[big].all()
    assert abs(on_h100[~big].mean() - 0.5) <= 1 / (~big).sum()


def test_a_pool_is_not_refused_requests_it_never_takes(pools):
    """An L4 replica cannot hold a 60K-token request; routed away from it, the fleet runs."""
    l4, h100 = pools
    reqs = bimodal(big=(60000, 100))
    with pytest.raises(Exception, match="KV blocks"):
        serve([replace(l4, router="least-outstanding-tokens"), h100], reqs)
    l4 = replace(l4, router="by-size", size_ranges=((0, 1000, 1.0),))
    h100 = replace(h100, router="by-size", size_ranges=((1000, 10**6, 1.0),))
    assert serve([l4, h100], reqs)[0]["num_requests"] == len(reqs.arrival_s)


def test_plan_with_size_buckets_is_never_dearer_and_meets_the_slo(pools):
    deps = [replace(p, job=p.job.model_copy(update={"system": p.job.system.model_copy(
        update={"num_gpus": 1})})) for p in pools]
    reqs = bimodal(n=160)
    blind_options, _ = fleet.replica_options(deps, reqs, 300.0, 120.0)
    sized_options, _ = fleet.replica_options(deps, reqs, 300.0, 120.0, by_size=True)
    assert all(len(o.bucket_capacity_rps) == 2 for o in sized_options)
    # the L4 misses the TTFT bound on 3,000-token prompts but stays an option for the rest
    l4 = next(o for o in sized_options if o.name.startswith("l4"))
    assert l4.bucket_capacity_rps[0] > 0 and l4.bucket_capacity_rps[1] == 0
    for rate in (4.0, 30.0):
        blind = fleet.plan_fleet(blind_options, reqs, rate, 300.0, 120.0)
        sized = fleet.plan_fleet(sized_options, reqs, rate, 300.0, 120.0)
        assert sized["usd_per_hour"] <= blind["usd_per_hour"]
        assert sized["summary"]["ttft_ms"]["p99"] <= 300.0
        assert sized["summary"]["tpot_ms"]["p99"] <= 120.0


def test_assignment_leaves_no_sliver_of_a_bucket():
    """A rounding residue of type a's budget does not split a second bucket (a share of
    1e-16 would route nothing, yet print as a range and make the pool be checked on it)."""
    # before the fix: shares [1.0, 9.1e-17, 0.4497] (bucket 2 split, then a residue on 1)
    loads = (14.662862637994625, 4.7443229624891305, 10.592814399516246)
    shares, _ = fleet._assign_by_size((14.0, 3.9, 5.0), (4.0, 19.12, 17.0), loads, 2)
    assert sum(0 < f < 1 for f in shares) <= 1


def test_plan_names_the_reason_when_no_type_takes_the_whole_mix():
    only_small = _option("small", 1.0, 0.0, (10.0, 0.0))
    with pytest.raises(Exception, match="whole request mix"):
        fleet.plan_fleet([only_small], bimodal(), 4.0, 300.0, 120.0)


def test_a_size_no_pool_takes_is_still_checked_on_every_pool(pools):
    """By-size ranges with a gap: a request in it goes to any replica, so the pools are
    checked for it up front (not left to fail as 'nothing can run' mid-run)."""
    l4, h100 = pools
    reqs = bimodal(big=(60000, 100))
    l4 = replace(l4, router="by-size", size_ranges=((0, 1000, 1.0),))
    h100 = replace(h100, router="by-size", size_ranges=((100000, 10**6, 1.0),))
    with pytest.raises(Exception, match="KV blocks"):
        serve([l4, h100], reqs)
