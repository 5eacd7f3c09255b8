"""Discrete-event serving simulation: requests arrive, a router picks a replica, the
replica's scheduler forms iterations, each iteration is priced by ``cost.StepCost`` (the layer
model), and tokens come out at iteration ends.

Events are iteration ends and arrivals. A stretch of decode-only iterations in which nothing
can join and nothing finishes is run in one tight loop (its iterations differ only in the
cached context), and decoding requests advance in lock step (``lockstep.py``: a decode step
costs O(1) whatever the batch), which is what makes a few 10⁴ simulated requests per second
possible in pure Python.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import operator
from array import array
from dataclasses import dataclass

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.physics import flops as F
from flopcast.physics.kv_cache import sequence_kv_bytes
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import graph_max_decode_seqs, weight_bytes_per_gpu
from flopcast.workloads.serving.cost import StepCost, kv_blocks
from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.routers import BySize, make_router
from flopcast.workloads.serving.schedulers import Iteration, Limits, make_scheduler

#: Decode stretches longer than this run vectorised.
LONG_STRETCH = 48
#: Skip the scheduler when every running request decodes and memory cannot run short
#: (tests compare runs with it off).
FAST_PATH = True


@dataclass(frozen=True)
class Deployment:
    """How a model is served: the job (model, GPUs, tp/pp/ep, formats, engine), the
    scheduler, its limits and the calibrated efficiency. GPUs beyond tp·pp are data-parallel
    replicas; pipeline stages run pp micro-batches in flight, simulated as pp schedulers
    sharing the replica's KV memory (vLLM's virtual engines)."""

    job: InferenceJob
    scheduler: str
    limits: Limits
    eff: Efficiency
    router: str = "round-robin"
    prefix_caching: bool = False
    role: str = "mixed"        # mixed | prefill | decode (Splitwise/DistServe pools)
    kv_link: str = "network"   # how a prefill pool ships KV to the decode pool: nvlink | network
    #: Request sizes (prompt + output tokens, lo <= size < hi) this pool takes under the
    #: by-size router, with the share of each range sent to it (Mélange's size-based
    #: allocation); empty = any size.
    size_ranges: tuple[tuple[int, int, float], ...] = ()

    def kv_transfer_s(self, tokens: int) -> float:
        """Seconds to move one request's KV cache of ``tokens`` tokens from this (prefill)
        replica to a decode replica: every tensor-parallel rank sends its shard in parallel
        over its own link (Splitwise, Patel et al. 2024 §4.3; DistServe, Zhong et al. 2024
        §4.1), plus one link latency."""
        job = self.job
        num_bytes = float(sequence_kv_bytes(job.model, tokens, job.kv_element_bytes))
        gpu, system = job.system.gpu, job.system
        if self.kv_link == "nvlink":
            bandwidth, latency = gpu.scale_up_bandwidth, gpu.nvlink_latency_s
        else:
            bandwidth, latency = system.network_bandwidth, system.network_latency_s
        return num_bytes / (bandwidth * job.tp * job.pp) + latency


@dataclass
class SimResult:
    """Per-request times (seconds; NaN where a request never got there) and the inter-token
    gaps every decode token saw (value, how many tokens saw it)."""

    requests: RequestTable
    itl_s: array  # of float64
    itl_weight: array  # of int64
    end_s: float
    trace: list[list[tuple[float, float, int, int, int]]]
    kv_capacity_blocks: list[int] = dataclasses.field(default_factory=list)
    #: per replica: time integrals of KV blocks in use and of queued requests, and peaks
    occupancy: list[dict] = dataclasses.field(default_factory=list)


ROLES = ("mixed", "prefill", "decode")
KV_LINKS = ("nvlink", "network")


def _check_pools(pools: list[Deployment]) -> None:
    """One model everywhere; prefill and decode pools come together."""
    names = {d.job.model.name for d in pools}
    if len(names) > 1:
        raise FlopcastError(f"pools: all pools must serve one model; got {sorted(names)}")
    for d in pools:
        if d.role not in ROLES:
            raise FlopcastError(f"role: {d.role!r} is not one of {', '.join(ROLES)}")
        if d.kv_link not in KV_LINKS:
            raise FlopcastError(f"kv_link: {d.kv_link!r} is not one of {', '.join(KV_LINKS)}")
    roles = {d.role for d in pools}
    if ("prefill" in roles) != ("decode" in roles):
        raise FlopcastError("pools: a prefill pool needs a decode pool and the other way round")
    if "mixed" in roles and len(roles) > 1:
        raise FlopcastError("pools: mix either disaggregated (prefill + decode) or mixed pools")


class _Arrivals:
    """Open loop: arrival times as given. Closed loop (``concurrency``): that many requests
    start at time 0 and each finish releases the next request at that moment."""

    def __init__(self, req: RequestTable, concurrency: int | None):
        n = len(req.arrival)
        self.heap: list[tuple[float, int]] = []
        self.next_id = 0
        if concurrency:
            for i in range(min(concurrency, n)):
                req.arrival[i] = 0.0
                self.heap.append((0.0, i))
            self.next_id = min(concurrency, n)
        else:  # in order of (arrival, id); pop() from the end = earliest first
            order = np.argsort(np.asarray(req.arrival, dtype=float), kind="stable")[::-1]
            self.times, self.ids = np.asarray(req.arrival)[order].tolist(), order.tolist()
        self.closed = bool(concurrency)
        self.n = n

    def peek(self) -> float:
        if self.closed:
            return self.heap[0][0] if self.heap else math.inf
        return self.times[-1] if self.times else math.inf

    def pop(self) -> int:
        if self.closed:
            return heapq.heappop(self.heap)[1]
        self.times.pop()
        return self.ids.pop()

    def finished(self, req: RequestTable, t: float) -> None:
        if self.closed and self.next_id < self.n:
            req.arrival[self.next_id] = t
            heapq.heappush(self.heap, (t, self.next_id))
            self.next_id += 1


class Simulator:
    """Runs one or more pools of replicas on one request set (see ``simulate``)."""

    def __init__(self, pools: Deployment | list[Deployment], req: RequestTable,
                 concurrency: int | None, keep_trace: bool = False):
        pools = [pools] if isinstance(pools, Deployment) else list(pools)
        _check_pools(pools)
        self.pools, self.dep, self.req = pools, pools[0], req
        longest = max(map(operator.add, req.prompt, req.output))
        model = pools[0].job.model
        max_context = longest + 1  # tables need only the contexts these requests reach
        self.replicas: list[Replica] = []
        for dep in pools:
            self.replicas += self._pool(dep, max_context)
        entry = [r for r in self.replicas if r.role != "decode"]
        decode = [r for r in self.replicas if r.role == "decode"]
        self.router = make_router(self.dep.router, entry)
        self.decode_router = make_router("least-outstanding-tokens", decode) if decode else None
        self.arrivals = _Arrivals(req, concurrency)
        self.coupled = bool(concurrency) or self.decode_router is not None
        self.ready: list[tuple[float, int]] = []
        self.handoffs: list[tuple[float, int]] = []  # (time KV lands on a decode pool, id)
        ends = np.arange(max_context + 1, dtype=float)
        self.key_prefix = (ends * F.attention_context(model, np.maximum(ends, 1.0),
                                                      causal=True)).tolist()
        self.itl_s = array("d")  # 8 bytes a gap (a million requests make ~5 M of them)
        self.itl_weight = array("q")
        self.keep_trace = keep_trace
        for dep in pools:  # replicas of one pool share their limits: check one of each
            self._check_fits(next(r for r in self.replicas if r.dep is dep))

    def _pool(self, dep: Deployment, max_context: int) -> list[Replica]:
        job, lim = dep.job, dep.limits
        sched = make_scheduler(dep.scheduler, lim)
        sched.prefix_caching = dep.prefix_caching
        cost = StepCost(job, dep.eff, lim.max_tokens + lim.max_seqs, lim.max_seqs,
                        max_context, graph_max_decode_seqs(job))
        capacity, per_len = kv_blocks(job, dep.eff)
        first = len(self.replicas)
        reps = [Replica(first + k, cost, capacity // job.pp, per_len,
                        job.engine.kv_block_tokens) for k in range(job.replicas * job.pp)]
        for r in reps:
            r.sched, r.dep, r.role = sched, dep, dep.role
            r.overlap = job.engine.overlap_scheduling
        return reps

    def _check_fits(self, rep: Replica) -> None:
        """Refuse requests no replica could ever hold (the engine would reject them)."""
        lim, dep = rep.sched.limits, rep.dep
        chunked = lim.chunk_tokens is not None or dep.scheduler == "static"
        prompt, output = np.asarray(self.req.prompt), np.asarray(self.req.output)
        # blocks_for is non-decreasing: a request fails from this many tokens on
        too_long = prompt + output >= rep.next_block_at(rep.capacity)
        too_wide = prompt > lim.max_tokens if not chunked and rep.role != "decode" else False
        bad = too_long | too_wide
        if dep.size_ranges and isinstance(self.router, BySize):
            # the router sends this pool only the sizes it takes, and sizes no pool takes
            # to any replica: skip only those another pool takes
            size = prompt + output

            def taken(ranges):
                return np.logical_or.reduce([(size >= lo) & (size < hi) for lo, hi, share
                                             in ranges if share > 0] or [size < 0])

            elsewhere = np.logical_or.reduce([taken(r) for r in self.router.ranges])
            bad &= taken(dep.size_ranges) | ~elsewhere
        bad = np.flatnonzero(bad)
        if not bad.size:
            return
        i = int(bad[0])
        p, o = int(prompt[i]), int(output[i])
        job = dep.job
        if rep.capacity == 0:
            raise FlopcastError(
                f"gpus: {job.model.name} leaves no memory for KV cache on {job.system.gpu.id} "
                f"with tp={job.tp}, pp={job.pp}: its {job.weights.name} weights take "
                f"{float(weight_bytes_per_gpu(job)) / 2**30:,.1f} GiB per GPU of "
                f"{job.system.gpu.hbm_bytes / 2**30:,.1f}; give more GPUs per replica or a "
                "smaller --precision")
        if too_long[i]:
            raise FlopcastError(
                f"request {i}: {p}+{o} tokens need {rep.blocks_for(p + o)} KV blocks; a "
                f"replica holds {rep.capacity} ({dep.job.model.name} on "
                f"{dep.job.system.gpu.id}, tp={dep.job.tp})")
        raise FlopcastError(
            f"request {i}: prompt of {p} tokens exceeds max_num_tokens "
            f"({lim.max_tokens}) and this scheduler does not chunk prompts")

    def run(self) -> SimResult:
        arrivals, replicas, handoffs = self.arrivals, self.replicas, self.handoffs
        ready = self.ready  # (clock, replica index) of busy replicas; stale entries skipped
        advance, inf = self._advance, math.inf
        while True:
            t_arr = arrivals.peek()
            t_hand = handoffs[0][0] if handoffs else inf
            t_next = t_arr if t_arr < t_hand else t_hand
            while ready:
                rep = replicas[ready[0][1]]
                if (rep.running or rep.waiting or rep.pending) and rep.clock == ready[0][0]:
                    break
                heapq.heappop(ready)
            if not ready or t_next <= ready[0][0]:
                if t_next == inf:
                    break
                if t_hand <= t_arr:
                    self._land(*heapq.heappop(handoffs))
                else:
                    self._arrive(arrivals.pop(), t_arr)
                continue
            heapq.heappop(ready)
            if self.coupled:
                if ready:
                    # a finish (closed loop) or a hand-off here may release work for another
                    # replica before t_next: stop where the next replica's clock stands
                    t_next = min(t_next, ready[0][0])
                advance(rep, t_next)
            else:
                # while it stays the earliest replica before the next arrival it would be
                # popped again at once: keep advancing it
                advance(rep, t_next)
                while (rep.running or rep.waiting or rep.pending) and rep.clock < t_next and (
                        not ready or (rep.clock, rep.index) < ready[0]):
                    advance(rep, t_next)
            if rep.running or rep.waiting or rep.pending:
                heapq.heappush(ready, (rep.clock, rep.index))
        end = max(r.clock for r in replicas)
        return SimResult(self.req, self.itl_s, self.itl_weight, end,
                         [r.trace for r in replicas], [r.capacity for r in replicas],
                         [r.occupancy for r in replicas])

    def _enqueue(self, rep: Replica, i: int, t: float) -> None:
        if not rep.busy:
            if t > rep.clock:
                rep.clock = t
            heapq.heappush(self.ready, (rep.clock, rep.index))
        if rep.overlap and rep.running:
            rep.pending.append((t, i))
        else:
            rep.waiting.append(i)
        req = self.req
        req.replica[i] = rep.index
        rep.outstanding_tokens += req.prompt[i] + req.output[i]

    def _land(self, t: float, i: int) -> None:
        """A prefilled request's KV cache arrives at a decode replica (Splitwise §4)."""
        self._enqueue(self.decode_router.route(self.req, i), i, t)

    def _arrive(self, i: int, t: float) -> None:
        self._enqueue(self.router.route(self.req, i), i, t)

    def _advance(self, rep: Replica, until: float) -> None:
        """Run one iteration of ``rep``, or a stretch of decode-only ones ending at the first
        finish, the next arrival or the KV headroom."""
        req = self.req
        if rep.pending:
            rep.reveal_pending()
            if rep.pending:  # they become visible after one more iteration
                until = min(until, rep.clock)
        n = len(rep.running)
        if (FAST_PATH and rep.all_decoding and n and rep.free_blocks >= n
                and not (rep.waiting and rep.sched.may_admit(rep, req))):
            # every running request is past its prefill and one block each is free (not
            # merely evictable: the stretch grows into free blocks only): the scheduler
            # would decode them all (no preemption possible), so skip asking it
            self._decode_stretch(rep, until, grown=False)
            return
        it = rep.sched.schedule(rep, req, rep.clock)
        if not it:
            raise FlopcastError(
                f"replica {rep.index}: nothing can run ({len(rep.waiting)} waiting, "
                f"{rep.free_blocks} free KV blocks); the engine limits are too small for "
                "these requests")
        if not it.prefill and not (rep.waiting and rep.sched.may_admit(rep, req)):
            self._decode_stretch(rep, until)
            return
        rep.all_decoding = False
        self._iteration(rep, it)

    def _iteration(self, rep: Replica, it: Iteration) -> None:
        req, cost, kp = self.req, rep.cost, self.key_prefix
        tokens = key_sum = 0
        for i, c in it.prefill:
            o = req.cached[i]
            tokens += c
            key_sum += kp[o + c] - kp[o]
        n = len(it.decode)
        context = rep.decode_context() if n else 0
        completing = [i for i, c in it.prefill if req.to_prefill(i) == c]
        dt = cost.step_s(tokens, key_sum, len(it.prefill), n, context, n + len(completing))
        end = rep.clock + dt
        rep.last_start = rep.clock
        if self.keep_trace:
            rep.trace.append((rep.clock, end, len(rep.running), tokens + n,
                              rep.capacity - rep.free_blocks))
        rep.account(end)  # KV and queue as they stood during the step (before releases)
        for i, c in it.prefill:
            req.cached[i] += c
        joining = [i for i in completing if self._prefilled(rep, i, end)]
        if n:
            rep.advance_decoding(req, 1)  # every request in rep.decoding decodes one token
            self.itl_s.append(dt + rep.stall_s)
            self.itl_weight.append(n)
            rep.stall_s = 0.0
        else:
            rep.pregrown = 0  # (nothing decodes: nobody was granted a block)
            if rep.sched.stalls_decodes and (rep.decoding or any(
                    req.generated[i] for i in rep.running)):
                rep.stall_s += dt
        for i in joining:
            rep.join_decoding(req, i)
        if rep.finish_heap and rep.finish_heap[0][0] <= rep.decode_steps:
            for i in rep.finished(req):
                self._finish(rep, i, end)

    def _prefilled(self, rep: Replica, i: int, end: float) -> bool:
        """Request i's prompt (or, after a preemption, its recomputed cache) is in place at
        ``end``: it emits its first token. True when it decodes here from the next iteration
        on (not finished, not handed to a decode pool)."""
        req = self.req
        if rep.dep.prefix_caching and req.prefix_id[i] >= 0:
            rep.cache_prefix(req, i)
        if req.generated[i]:
            return True  # a preempted request's cache is rebuilt; it decodes next
        req.first_token[i] = end
        req.generated[i] = 1
        rep.outputs_left -= 1  # running, not yet decoding: its stored count is the true one
        if req.output[i] <= 1:
            self._finish(rep, i, end)
            return False
        if rep.role == "prefill":
            self._hand_off(rep, i, end)
            return False
        return True

    def _hand_off(self, rep: Replica, i: int, t: float) -> None:
        """Prefill done on a prefill replica: free its KV there and ship it to the decode
        pool over the link between the pools (bytes of the prompt's cache over the link)."""
        rep.release(self.req, i)
        rep.dismiss(self.req, i)
        rep.outstanding_tokens -= self.req.prompt[i] + self.req.output[i]
        heapq.heappush(self.handoffs, (t + rep.dep.kv_transfer_s(self.req.cached[i]), i))

    def _decode_stretch(self, rep: Replica, until: float, grown: bool = True) -> None:
        """Decode-only iterations of every request in ``rep.decoding``; ``grown``: the
        scheduler already holds each request's block for the first step."""
        req, cost = self.req, rep.cost
        n = len(rep.decoding)
        rep.all_decoding = n == len(rep.running)
        limit = min(rep.steps_to_finish(req),
                    int(grown) + rep.block_tokens * (rep.free_blocks // n))  # KV headroom
        if rep.waiting:
            limit = min(limit, rep.sched.stretch_cap(rep, req, n))
        fixed = cost.decode_fixed_s[n]
        context = rep.context_base + n * rep.decode_steps  # rep.decode_context()
        used_before, traced, pregrown = rep.capacity - rep.free_blocks, len(rep.trace), rep.pregrown
        if limit > LONG_STRETCH and not self.keep_trace:
            t, k, gaps = self._long_stretch(rep, n, context, fixed, limit, until)
        else:
            t, k, gaps = self._short_stretch(rep, n, context, fixed, limit, until)
        rep.stall_s = 0.0
        rep.account(t)
        rep.advance_decoding(req, k)  # the blocks the stretch grew into, taken at its end
        rep.account_growth(used_before, gaps, pregrown, traced)
        if rep.finish_heap[0][0] <= rep.decode_steps:
            for i in rep.finished(req):
                self._finish(rep, i, t)

    def _short_stretch(self, rep, n, context, fixed, limit, until):
        cost = rep.cost
        trace = rep.trace if self.keep_trace else None
        t, k, gaps = rep.clock, 0, []
        while k < limit and (k == 0 or t < until):
            dt = fixed + cost.decode_attention_s(n, context + k * n, True)
            dt += cost.host_s(dt, n)
            if trace is not None:
                trace.append((t, t + dt, len(rep.running), n, rep.capacity - rep.free_blocks))
            rep.last_start = t
            t += dt
            gaps.append(dt)
            k += 1
        self.itl_s.extend(gaps)
        self.itl_s[-k] += rep.stall_s  # the first gap includes the prefill-only steps sat out
        self.itl_weight.extend([n] * k)
        return t, k, gaps

    def _long_stretch(self, rep, n, context, fixed, limit, until):
        """The same stretch with NumPy: iteration k starts at clock + Σ earlier gaps and may
        start only before ``until`` (the first one always runs)."""
        dts = fixed + rep.cost.decode_attention_run_s(n, context + n * np.arange(limit))
        dts = dts + rep.cost.host_s(dts, n)
        starts = rep.clock + np.concatenate(([0.0], np.cumsum(dts[:-1])))
        k = max(1, int(np.searchsorted(starts, until, side="left")))
        dts = dts[:k]
        rep.last_start = float(starts[k - 1])
        gaps = dts.tolist()
        gaps[0] += rep.stall_s
        self.itl_s.extend(gaps)
        self.itl_weight.extend([n] * k)
        return rep.clock + float(dts.sum()), k, dts

    def _finish(self, rep: Replica, i: int, t: float) -> None:
        req = self.req
        if i in rep.decoding:
            rep.leave_decoding(req, i)
        req.finish[i] = t
        rep.release(req, i)
        rep.dismiss(req, i)
        rep.outstanding_tokens -= req.prompt[i] + req.output[i]
        self.arrivals.finished(req, t)


def simulate(dep: Deployment | list[Deployment], requests, concurrency: int | None = None,
             keep_trace: bool = False) -> SimResult:
    """Simulate ``requests`` (workload.Requests) on ``dep`` (one deployment, or pools: GPU
    types mixed, or prefill + decode pools); ``concurrency`` runs a closed loop (that many
    requests in flight, the next one issued as one finishes)."""
    n = len(requests.arrival_s)
    pid = requests.prefix_id if requests.prefix_id is not None else np.full(n, -1)
    plen = requests.prefix_len if requests.prefix_len is not None else np.zeros(n)
    req = RequestTable(
        arrival=np.asarray(requests.arrival_s, dtype=float).tolist(),
        prompt=np.asarray(requests.input_len, dtype=int).tolist(),
        output=np.asarray(requests.output_len, dtype=int).tolist(),
        prefix_id=np.asarray(pid, dtype=int).tolist(),
        prefix_len=np.asarray(plen, dtype=int).tolist())
    if not req.arrival:
        raise FlopcastError("requests: the workload has no requests")
    return Simulator(dep, req, concurrency, keep_trace).run()


__all__ = ["Deployment", "SimResult", "simulate"]
