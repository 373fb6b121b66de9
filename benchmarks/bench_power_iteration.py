"""Batched power iteration vs a loop of ``torch.linalg.matrix_norm(ord=2)``.

All layers of K members of a 784-200-200-10 MLP (float32, Kaiming-uniform scale). The naive
way computes each member's and layer's spectral norm in a Python loop (an SVD each); the batched
way runs :func:`robustlaw.empirical.lipschitz.power_iteration` once per layer on the
``(K, out, in)`` stack, with Gram squarings (``squarings``) so that a few matrix-vector steps
suffice, and, second, :func:`robustlaw.empirical.lipschitz.krylov.lanczos` (per cache-sized
chunk of members: one Gram product, Lanczos on the small Gram matrices, ``sigma`` on the real
weights), once with each backend: ``torch`` (batched lock-step operations) and ``numba`` (each
matrix to its own convergence in compiled code; its one-off compilation is timed apart).
Errors are relative to float64 singular values, measured on the first ``--check-members``
members. Every timing is the best of ``--repeat`` runs (the machine is
shared). Run: ``python benchmarks/bench_power_iteration.py [--members 1024]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from robustlaw.empirical.lipschitz import lanczos_kernel, power_iteration
from robustlaw.empirical.lipschitz.krylov import lanczos

SIZES = (784, 200, 200, 10)


def make_layers(n_members: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (2 * torch.rand(n_members, b, a, generator=gen) - 1) / a**0.5
        for a, b in zip(SIZES[:-1], SIZES[1:], strict=True)
    ]


def best_of(repeat: int, work):
    """Run ``work()`` ``repeat`` times; return its last result and the shortest time (s)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return result, min(times)


def naive(layers: list[torch.Tensor], repeat: int) -> tuple[list[torch.Tensor], float]:
    return best_of(
        repeat,
        lambda: [torch.stack([torch.linalg.matrix_norm(w, ord=2) for w in W]) for W in layers],
    )


def batched(layers, method, repeat, **options) -> tuple[list[torch.Tensor], float, list[int]]:
    def work():
        gen = torch.Generator().manual_seed(1)
        return [method(W, generator=gen, **options) for W in layers]

    results, seconds = best_of(repeat, work)
    return [r.sigma for r in results], seconds, [r.n_iter for r in results]


def max_rel_error(norms, exact, n) -> float:
    return max(
        float(((s[:n].double() - e) / e).abs().max()) for s, e in zip(norms, exact, strict=True)
    )


def run(n_members: int, squarings: int, tol: float, check: int, repeat: int) -> list[dict]:
    layers = make_layers(n_members)
    exact = [torch.linalg.svdvals(W[:check].double())[:, 0] for W in layers]
    loop_norms, loop_s = naive(layers, repeat)
    ways = {
        f"power, {squarings} squarings": (
            power_iteration,
            {"max_iter": 500, "tol": tol, "squarings": squarings},
        ),
        "lanczos, torch": (lanczos, {"max_iter": 64, "tol": tol, "backend": "torch"}),
    }
    if lanczos_kernel.AVAILABLE:
        ways["lanczos, numba"] = (lanczos, {"max_iter": 64, "tol": tol, "backend": "numba"})
    rows = []
    for name, (method, options) in ways.items():
        fast_norms, fast_s, iters = batched(layers, method, repeat, **options)
        rows.append(
            {
                "K": n_members,
                "way": name,
                "loop_s": loop_s,
                "batched_s": fast_s,
                "ratio": loop_s / fast_s,
                "loop_err": max_rel_error(loop_norms, exact, check),
                "batched_err": max_rel_error(fast_norms, exact, check),
                "iters": iters,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--squarings", type=int, default=8)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--check-members", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, {SIZES}")
    print(f"squarings={args.squarings} tol={args.tol}; errors vs float64 SVD")
    if lanczos_kernel.AVAILABLE:
        start = time.perf_counter()
        lanczos(make_layers(2)[0], backend="numba")  # compiles, or loads numba's disk cache
        print(f"numba kernel ready in {time.perf_counter() - start:.2f} s (once per machine)")
    print(
        f"{'K':>6} {'batched way':<22} {'loop (s)':>9} {'batched (s)':>12} {'ratio':>7} "
        f"{'loop err':>9} {'batched err':>12}  steps per layer"
    )
    for k in args.members:
        for r in run(k, args.squarings, args.tol, min(args.check_members, k), args.repeat):
            print(
                f"{r['K']:>6} {r['way']:<22} {r['loop_s']:>9.2f} {r['batched_s']:>12.3f} "
                f"{r['ratio']:>6.1f}x {r['loop_err']:>9.1e} {r['batched_err']:>12.1e}  "
                f"{r['iters']}"
            )


if __name__ == "__main__":
    main()
