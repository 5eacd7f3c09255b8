"""Majority and weighted voting from an answer-distribution model per problem (Wu et al. 2025,
"Inference Scaling Laws", ICLR 2025, arXiv:2408.00724, §3.1, Theorems 1-2).

**Answer model.** Each sample of problem i gives the correct answer with probability p_i, the
most common wrong answer with q_i = rho_i (1 - p_i), and otherwise one of many rare wrong
answers ("scatter", s_i = (1 - rho_i)(1 - p_i)). rho_i, the share of the wrong mass on the top
wrong answer, is read from answer histograms (the samples file's ``top_wrong`` column: rho_i =
top_wrong_i / (n_i - correct_i); 1 where every sample was correct), or, when the file has
correct counts only, must be given as an assumption (:func:`concentration`); rho = 1 is the
"all wrong answers agree" case (``voting``'s lower bound), rho -> 0 "all distinct" (its upper
bound). Assumed throughout: samples independent given the problem; rho_i fixed per problem
whatever p_i is (p_i carries the posterior uncertainty, ``posterior``); each scatter answer
appears at most once among the k samples (exact as k -> infinity whenever each rare answer's
share is below q_i; optimistic for the correct answer at small k otherwise).

**Majority vote** over k samples (Theorem 1): X_c, X_w, X_s (correct, top wrong, scatter
counts) are multinomial; the correct answer wins with X_c > X_w and X_c >= 2, shares a tie
among the t + 1 leading answers with credit 1 / (t + 1) (ties with scatter singletons when
X_c = 1). Conditioning on m = X_c + X_w ~ Binomial(k, a + b), X_c | m ~ Binomial(m, theta),
theta = a / (a + b), the strict-win term is a regularised incomplete Beta function,
P(X_c > m/2 | m) = I_theta(floor(m/2) + 1, m - floor(m/2)), and the scatter ties use
E[1 / (j + X)] for X ~ Binomial(N, t) in closed form (:func:`_inverse_moment`); the sum over m
runs over mean +- ``WINDOW_SD`` standard deviations (the rest below ~1e-9). As k -> infinity it
tends to 1[p_i > q_i] (+ 1/2 at equality): Wu et al.'s limit.

**Weighted majority vote** (Theorem 2, reward-model scores rho(x r e y) as vote weights) with
the reward model as an accept/reject verifier (the ``best-of-n`` parameters: it accepts a
correct sample with probability tpr, a wrong one with fpr): votes are the accepted samples,
so the same kernel runs with a = p tpr, b = q fpr, s = s fpr and the rejected samples casting
no vote; when none is accepted a random sample is returned (as ``strategies.best_of_n``), which
adds p (1 - tpr) (1 - a - b - s)^(k-1). Its limit is 1[p tpr > q fpr]: with an informative
verifier (tpr > fpr) at least the majority limit, Wu et al.'s remark after Theorem 2. A
continuous score model would need score distributions that no input here has.
"""

from __future__ import annotations

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.coverage import _ks, _scipy

#: Half-width of the window over m = X_c + X_w, in standard deviations of Binomial(k, a + b)
#: (the mass outside is below ~1e-9; 10 instead changes accuracies by < 4e-9).
WINDOW_SD = 6.0
#: A row whose vote is won (or lost) at the window's smallest m within this is summed in
#: closed form (see _plurality_sum).
DECIDED_TOLERANCE = 1e-12
#: Rows of (points) per chunk of the windowed sum (memory: rows x window floats).
CHUNK_ROWS = 4096
#: Points with a posterior weight below this are skipped (their credit is not needed).
MIN_WEIGHT = 1e-14


def _inverse_moment(j: int, trials, t, special) -> np.ndarray:
    """E[1 / (j + X)] for X ~ Binomial(N, t), j in {1, 2}: with Y ~ Binomial(N + 1, t),
    E[1 / (1 + X)] = P(Y >= 1) / ((N + 1) t), and 1 / (2 + x) = 1 / (1 + x) - 1 / ((1 + x)(2 + x))
    with E[1 / ((1 + X)(2 + X))] = P(Z >= 2) / ((N + 1)(N + 2) t^2), Z ~ Binomial(N + 2, t)
    (the binomial identity C(N, x) / ((x+1)(x+2)) = C(N+2, x+2) / ((N+1)(N+2))); the tails
    are regularised incomplete Beta functions. t -> 0: 1 / j."""
    n = np.maximum(np.asarray(trials, float), 0.0)
    t = np.asarray(t, float)
    small = t < 1e-100
    ts = np.where(small, 0.5, t)
    first = special.betainc(1.0, n + 1, ts) / ((n + 1) * ts)
    if j == 1:
        return np.where(small, 1.0, first)
    second = special.betainc(2.0, n + 1, ts) / ((n + 1) * (n + 2) * ts * ts)
    return np.where(small, 0.5, first - second)


def _binom_log_pmf(m, k, prob, special, log_factorial=None) -> np.ndarray:
    """log P(M = m) for M ~ Binomial(k, prob) (arrays broadcast). ``log_factorial``: a table
    of log(j!) for j = 0..max k, indexed instead of calling gammaln when m and k are whole
    numbers (the vote sums evaluate millions of terms)."""
    if log_factorial is None:
        log_choose = special.gammaln(k + 1.0) - special.gammaln(m + 1.0) - special.gammaln(
            k - m + 1.0)
    else:
        mi, ki = np.asarray(m, np.int64), np.asarray(k, np.int64)
        log_choose = log_factorial[ki] - log_factorial[mi] - log_factorial[ki - mi]
    # m log(prob) + (k - m) log(1 - prob) with 0 log 0 = 0 (as scipy's xlogy): the logs are
    # taken on prob's own (smaller) shape and only multiplied over the broadcast grid.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p, log_q = np.log(prob), np.log1p(-np.asarray(prob, float))
        rest = np.asarray(k, float) - m
        return (log_choose + np.where(m > 0, m * log_p, 0.0)
                + np.where(rest > 0, rest * log_q, 0.0))


def _plurality_sum(pi, theta, k: int, special) -> np.ndarray:
    """sum over m >= 2 of P(m) [P(X_c > m/2 | m) + 1/2 P(X_c = m/2 | m) for even m >= 4],
    windowed around the mean of m (module docstring)."""
    mu, sd = k * pi, np.sqrt(k * pi * (1 - pi))
    lo = np.clip(np.floor(mu - WINDOW_SD * sd) - 2, 2, k).astype(np.int64)
    hi = np.clip(np.ceil(mu + WINDOW_SD * sd) + 2, 2, k).astype(np.int64)
    out = np.zeros(pi.size)
    if k < 2:
        return out
    # Closed forms where one side is missing: no top wrong answer (theta = 1) wins every
    # m >= 2, so the sum is P(m >= 2); no correct vote (theta = 0) never wins. Only rows with
    # both answers need the window.
    # The same holds within DECIDED_TOLERANCE wherever the window's smallest m (either
    # parity) is already decided: with ties split evenly, P(correct majority | m) is monotone
    # in m (Condorcet's jury theorem: rising for theta > 1/2, falling below), so every larger
    # m is decided too.
    first = np.minimum(lo[:, None] + np.arange(2)[None, :], k).astype(float)
    start = _strict_and_tie(first, theta[:, None], special)
    won = (theta > 0.5) & (start.min(axis=1) >= 1.0 - DECIDED_TOLERANCE)
    lost = (theta < 0.5) & (start.max(axis=1) <= DECIDED_TOLERANCE)
    alone = (theta >= 1.0) | won
    out[alone] = np.clip(1.0 - (1.0 - pi[alone]) ** k
                         - k * pi[alone] * (1.0 - pi[alone]) ** (k - 1), 0.0, 1.0)
    closed = alone | lost | (theta <= 0.0)
    order = np.argsort(hi - lo, kind="stable")
    order = order[~closed[order]]
    log_factorial = special.gammaln(np.arange(k + 1.0) + 1.0)
    for start in range(0, order.size, CHUNK_ROWS):
        rows = order[start:start + CHUNK_ROWS]
        width = int((hi[rows] - lo[rows]).max()) + 1
        m = lo[rows, None] + np.arange(width)[None, :]
        valid = m <= hi[rows, None]
        m = np.minimum(m, k).astype(float)
        win = _strict_and_tie(m, theta[rows, None], special, log_factorial)
        pmf = np.exp(_binom_log_pmf(m, k, pi[rows, None], special, log_factorial))
        out[rows] = (valid * pmf * win).sum(axis=1)
    return out


def _strict_and_tie(m, theta, special, log_factorial=None) -> np.ndarray:
    """P(X_c > m/2 | m) + 1/2 P(X_c = m/2 | m) for even m >= 4, X_c ~ Binomial(m, theta)."""
    half = np.floor(m / 2)
    win = special.betainc(half + 1, m - half, theta)
    even = (m % 2 == 0) & (m >= 4)
    tie = np.where(even, np.exp(_binom_log_pmf(half, m, theta, special, log_factorial)), 0.0)
    return win + 0.5 * tie


def vote_credit(a, b, s, k: int, fallback=0.0) -> np.ndarray:
    """Expected credit of the correct answer in a vote over k samples where each sample votes
    correct (probability a), for the top wrong answer (b), for a distinct rare answer (s) or
    not at all (1 - a - b - s); ``fallback`` times (1 - a - b - s)^(k-1) is added for the case
    no sample votes (module docstring). Broadcasts a, b, s, fallback."""
    _, special = _scipy()
    a, b, s, fallback = (np.asarray(x, float) for x in np.broadcast_arrays(a, b, s, fallback))
    shape = a.shape
    a, b, s, fallback = a.ravel(), b.ravel(), s.ravel(), fallback.ravel()
    pi = np.clip(a + b, 0.0, 1.0)
    theta = np.where(pi > 0, a / np.where(pi > 0, pi, 1.0), 0.0)
    rest = 1.0 - pi
    t = np.where(rest > 0, np.clip(s / np.where(rest > 0, rest, 1.0), 0.0, 1.0), 0.0)
    credit = _plurality_sum(pi, theta, k, special)
    p1 = np.exp(_binom_log_pmf(1.0, k, pi, special))
    credit += p1 * theta * _inverse_moment(1, k - 1, t, special)
    if k >= 2:
        p2 = np.exp(_binom_log_pmf(2.0, k, pi, special))
        credit += p2 * 2 * theta * (1 - theta) * _inverse_moment(2, k - 2, t, special)
    z = np.clip(1.0 - pi - s, 0.0, 1.0)
    credit += fallback * z ** (k - 1)
    return credit.reshape(shape)


def concentration(samples, assumed: float | None = None, who: str = "voting") -> np.ndarray:
    """rho_i per problem (module docstring): from the samples' ``top_wrong`` counts when the
    file has them, else ``assumed`` for every problem; refuses when neither is there (the
    message starts with ``who``, the strategy that needs it)."""
    top = getattr(samples, "top_wrong", None)
    if top is not None:
        wrong = samples.samples - samples.correct
        return np.where(wrong > 0, top / np.maximum(wrong, 1), 1.0)
    if assumed is None:
        raise FlopcastError(
            f"{who}: {samples.model}/{samples.benchmark} has correct counts only; the answer "
            "model needs the top_wrong column (samples giving the most common wrong answer, "
            "per problem) or an assumed wrong-answer concentration in [0, 1]")
    if not 0.0 <= assumed <= 1.0:
        raise FlopcastError(f"{who}: wrong-answer concentration must be in [0, 1]; got "
                            f"{assumed!r}")
    return np.full(samples.n_problems, float(assumed))


def vote_accuracy(post, k, rho, tpr: float | None = None,
                  fpr: float | None = None) -> np.ndarray:
    """Majority-vote accuracy per problem and k, (problems, ks), averaged over each problem's
    posterior points (``posterior.Posterior``); with a verifier (tpr, fpr) the weighted vote
    (module docstring). ``rho``: each problem's wrong-answer concentration."""
    from flopcast.workloads.reasoning.strategies import check_verifier

    weighted = tpr is not None or fpr is not None
    if weighted:
        check_verifier(tpr, fpr)
    tpr, fpr = (tpr, fpr) if weighted else (1.0, 1.0)
    rho = np.broadcast_to(np.asarray(rho, float), (post.n_problems,))[:, None]
    keep = post.w > MIN_WEIGHT
    p = post.p[keep]
    wrong = (1.0 - p) * np.broadcast_to(rho, post.p.shape)[keep]
    a, b = p * tpr, wrong * fpr
    s = (1.0 - p - wrong) * fpr
    fallback = p * (1.0 - tpr) if weighted else 0.0
    ks = _ks(k).ravel()
    out = np.empty((post.n_problems, ks.size))
    for i, kk in enumerate(ks.tolist()):
        credit = np.zeros(post.p.shape)
        credit[keep] = vote_credit(a, b, s, kk, fallback)
        out[:, i] = post.expect(credit)
    return out


def vote_limit(post, rho, tpr: float | None = None, fpr: float | None = None) -> float:
    """Accuracy as k -> infinity (Wu et al. 2025, Theorems 1-2): the posterior share of
    problems whose correct answer collects more (weighted) votes than the top wrong one,
    p tpr > rho (1 - p) fpr (tpr = fpr = 1 for the plain majority), ties counted half."""
    tpr, fpr = (1.0, 1.0) if tpr is None and fpr is None else (tpr, fpr)
    rho = np.asarray(rho, float).reshape(-1, 1)
    a, b = post.p * tpr, rho * (1.0 - post.p) * fpr
    win = (a > b) + 0.5 * ((a == b) & (a > 0))
    return float(post.expect(win).mean())
