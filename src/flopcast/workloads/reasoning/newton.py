"""Maximum likelihood of two-parameter difficulty distributions, many fits at once.

The difficulty models of ``average`` (Beta, Kumaraswamy) have two parameters each; a fit from a
few starting points and a bootstrap's hundreds of refits are all the same problem with
different multiplicities of the (n, c) pairs, so they run together as one array: damped Newton
(Levenberg 1944, Q. Appl. Math. 2:164-168; Marquardt 1963, J. SIAM 11:431-441) on the
log-likelihood sum_pairs mult * log P(c | n, theta), with the per-pair value, gradient and
Hessian from the family, a step accepted only when the likelihood rises, and the parameters
kept in a box. NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Newton iterations at most (a fit from a good start converges in 5-15).
MAX_ITERATIONS = 80
#: A fit stops when its gradient (in log-parameters) is below GRADIENT_TOL, when a step would
#: raise (to first order) or an accepted step raised its log-likelihood by less than RISE_TOL,
#: or when its damping passes DAMPING_STOP
#: (no step raises the likelihood any more: at a box edge, or converged to rounding).
GRADIENT_TOL = 1e-7
RISE_TOL = 1e-9
DAMPING_STOP = 1e10

Terms = Callable[[np.ndarray, int], tuple]


def _totals(terms: Terms, theta: np.ndarray, mult: np.ndarray):
    value, grad, hess = terms(theta, 2)
    with np.errstate(invalid="ignore"):
        total = np.where(mult > 0, mult * value, 0.0).sum(axis=1)
    return (total, np.einsum("rp,rpk->rk", mult, np.nan_to_num(grad)),
            np.einsum("rp,rpkl->rkl", mult, np.nan_to_num(hess)))


def maximise(terms: Terms, theta: np.ndarray, mult: np.ndarray,
             bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximise each row's log-likelihood sum_p mult[r, p] * value[r, p] over theta[r] (R, 2)
    within ``bounds`` (2, 2: low, high per parameter). ``terms(theta, order)`` gives value
    (R, P), gradient (R, P, 2) and Hessian (R, P, 2, 2). Returns (theta, log-likelihood)."""
    theta = np.clip(np.array(theta, dtype=float), bounds[:, 0], bounds[:, 1])
    mult = np.broadcast_to(np.asarray(mult, dtype=float), (theta.shape[0], np.shape(mult)[-1]))
    total, grad, hess = _totals(terms, theta, mult)
    damping = np.full(theta.shape[0], 1e-3)
    flat = np.zeros(theta.shape[0], dtype=bool)
    for _ in range(MAX_ITERATIONS):
        live = (np.abs(grad).max(axis=1) > GRADIENT_TOL) & (damping < DAMPING_STOP) & ~flat
        if not live.any():
            break
        idx = np.flatnonzero(live)
        neg = -hess[idx]
        scale = np.abs(np.diagonal(neg, axis1=1, axis2=2)) + 1.0
        system = neg + (damping[idx, None] * scale)[:, :, None] * np.eye(2)
        step = np.linalg.solve(system, grad[idx][:, :, None])[:, :, 0]
        rise = np.einsum("rk,rk->r", grad[idx], step)  # first-order rise of the step
        damping[idx[rise < 0]] *= 8.0  # not an ascent direction: damp towards the gradient
        flat[idx[(rise >= 0) & (rise < RISE_TOL)]] = True
        go = rise >= RISE_TOL
        idx, step = idx[go], step[go]
        if not idx.size:
            continue
        trial = np.clip(theta[idx] + step, bounds[:, 0], bounds[:, 1])
        t_total, t_grad, t_hess = _totals(terms, trial, mult[idx])
        better = t_total > total[idx]
        up = idx[better]
        flat[up] = t_total[better] - total[up] < RISE_TOL
        theta[up], total[up], grad[up], hess[up] = (trial[better], t_total[better],
                                                    t_grad[better], t_hess[better])
        damping[idx] = np.where(better, damping[idx] / 4.0, damping[idx] * 8.0)
    return theta, total
