"""Batched pruning of K members against pruning them one by one.

Run as a script: ``python benchmarks/bench_pruning.py``. For each method and K it times
``prune(ensemble, plans)`` on all K members at once and the loop ``prune(member_k, plan_k)``
over the same members (the naive way), and prints the ratio. Both give identical masks
(checked here, and in ``tests/empirical/pruning/test_plan.py``).

Torch runs with one intra-op thread (``--threads``): on a small machine shared with other
work, two threads oversubscribe the cores and make every batched op several times slower.
"""

from __future__ import annotations

import argparse
import time

import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import PrunePlan, prune, select_members

SPEC = MLPSpec(layer_sizes=(30, 100, 100, 1))
METHODS = ("random", "magnitude", "snip", "grasp", "synflow")


def _time(fn, repeats: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), MLP {SPEC.layer_sizes}")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 30, generator=gen)
    y = torch.sign(torch.randn(200, generator=gen))
    print("| method | K | loop (s) | batched (s) | loop / batched |")
    print("|---|---|---|---|---|")
    for method in METHODS:
        for k in (16, 64):
            ens = init_mlp_ensemble(SPEC, seeds=range(k))
            plans = [PrunePlan(method=method, density=0.1, seed=s) for s in range(k)]
            t_batch, res = _time(lambda: prune(ens, plans, data=(x, y)))  # noqa: B023
            t_loop, singles = _time(
                lambda: [prune(select_members(ens, [i]), plans[i], data=(x, y)) for i in range(k)]  # noqa: B023
            )
            for i, single in enumerate(singles):
                for name, m in single.ensemble.masks.items():
                    if not torch.equal(m[0], res.ensemble.masks[name][i]):
                        raise AssertionError(f"{method}: member {i} differs in {name}")
            print(f"| {method} | {k} | {t_loop:.3f} | {t_batch:.3f} | {t_loop / t_batch:.1f} |")


if __name__ == "__main__":
    main()
