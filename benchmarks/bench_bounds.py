"""Time 10^6 broadcast evaluations of each bound against a naive per-element Python loop.

Run as ``python benchmarks/bench_bounds.py``. Each bound is evaluated on a 1000 x 1000 grid
built by broadcasting a column against a row (validation and precondition checks included);
the naive reference evaluates the same formula with :mod:`math` in a Python loop over 10^4
grid points and is scaled by 100. Times are the best of ``--repeat`` runs, in seconds.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from robustlaw import bounds as rb

N_SIDE = 1000
N_NAIVE = 10_000


def _grid(lo: float, hi: float, axis: int) -> np.ndarray:
    values = np.geomspace(lo, hi, N_SIDE)
    return values[:, None] if axis == 0 else values[None, :]


def _cases():
    """(name, vectorized call, naive per-element function, the arrays it varies)."""
    n, p = _grid(1e3, 1e7, 0), _grid(1e2, 1e8, 1)
    eps, delta = 0.8, 0.1
    kept, info = _grid(1.0, 1e6, 0), _grid(1.0, 1e6, 1)
    lb = dict(d=784, eps=eps, delta=delta, W=10.0, J=10.0, check_assumptions=False)
    sp = dict(d=784, eps=eps, delta=delta, check_assumptions=False)
    log = math.log

    def naive_bs(n_, p_):
        return eps / 512 * math.sqrt(n_ * 784 / (p_ * log(60 * 100 / eps) + log(4 / delta)))

    def naive_bs_full(n_, d_, p_, e_, de_, w_, j_):
        return e_ / 512 * math.sqrt(n_ * d_ / (p_ * log(60 * w_ * j_ / e_) + log(4 / de_)))

    def naive_nfp(n_, q):
        return eps / 1152 * math.sqrt(n_ * 784 * delta / (q + delta / 2 * log(4 / delta)))

    def naive_peff(k_, i_):
        return i_ + k_ * math.log2(1 + 60 * 100 / eps)

    def naive_p(L_, n_):
        return max((eps**2 * n_ * 784 / (2**18 * L_**2) - log(4 / delta)) / log(7500), 0.0)

    def naive_binom(p_, k_):
        return (math.lgamma(p_ + 1) - math.lgamma(k_ + 1) - math.lgamma(p_ - k_ + 1)) / log(2)

    lips = _grid(1e-3, 1e1, 0)
    big_n, cards = _grid(1e5, 1e7, 0), _grid(1.0, 1e3, 1)  # no float overflow in the naive loop
    rng = np.random.default_rng(0)
    full = dict(  # every argument a 10^6 array, all preconditions checked
        n=rng.uniform(1e5, 1e7, (N_SIDE, N_SIDE)),
        d=rng.uniform(10, 1e3, (N_SIDE, N_SIDE)),
        p=rng.uniform(1e2, 1e8, (N_SIDE, N_SIDE)),
        eps=rng.uniform(0.7, 0.9, (N_SIDE, N_SIDE)),
        delta=rng.uniform(0.05, 0.5, (N_SIDE, N_SIDE)),
        W=rng.uniform(1, 10, (N_SIDE, N_SIDE)),
        J=rng.uniform(1, 10, (N_SIDE, N_SIDE)),
    )
    return [
        (
            "lipschitz_lower_bound",
            lambda: rb.lipschitz_lower_bound(n=n, p=p, **lb),
            naive_bs,
            (n, p),
        ),
        (
            "lipschitz_lower_bound (7 full arrays, checked)",
            lambda: rb.lipschitz_lower_bound(**full),
            naive_bs_full,
            tuple(full.values()),
        ),
        (
            "sparse_lipschitz_lower_bound",
            lambda: rb.sparse_lipschitz_lower_bound(n=n, p_eff=p, **sp),
            naive_nfp,
            (n, p),
        ),
        (
            "effective_parameter_count",
            lambda: rb.effective_parameter_count(
                kept=kept, mutual_information_bits=info, W=10, J=10, eps=eps
            ),
            naive_peff,
            (kept, info),
        ),
        (
            "required_parameter_count",
            lambda: rb.required_parameter_count(L=lips, n=_grid(1e3, 1e7, 1), **lb),
            naive_p,
            (lips, _grid(1e3, 1e7, 1)),
        ),
        (
            "mask_entropy_upper_bound",
            lambda: rb.mask_entropy_upper_bound(_grid(1e6, 1e9, 0), kept.T),
            naive_binom,
            (_grid(1e6, 1e9, 0), kept.T),
        ),
        (
            "finite_class_failure_probability",
            lambda: rb.finite_class_failure_probability(
                n=big_n, d=784, log_card=cards, L=1.0, eps=eps
            ),
            lambda n_, c_: min(
                4 * math.exp(-n_ * eps**2 / 512) + 2 * math.exp(c_ - eps**2 * n_ * 784 / 4096), 1.0
            ),
            (big_n, cards),
        ),
    ]


def _best(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is kept)")
    args = parser.parse_args(argv)
    print(f"{'function':<48} {'numpy 1e6 [s]':>14} {'naive 1e6 [s]':>14} {'speed-up':>9}")
    for name, vectorized, naive, arrays in _cases():
        vectorized()  # compile the sympy expression once (lambdify), as any first call does
        t_vec = _best(vectorized, args.repeat)
        flat = [np.broadcast_to(x, (N_SIDE, N_SIDE)).ravel()[:N_NAIVE].tolist() for x in arrays]
        rows = list(zip(*flat, strict=True))
        t_naive = _best(lambda f=naive, xs=rows: [f(*x) for x in xs], args.repeat)
        t_naive *= N_SIDE * N_SIDE / N_NAIVE
        print(f"{name:<48} {t_vec:>14.4f} {t_naive:>14.3f} {t_naive / t_vec:>8.1f}x")


if __name__ == "__main__":
    main()
