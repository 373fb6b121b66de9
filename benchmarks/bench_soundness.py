"""Soundness of every Lipschitz estimate on thousands of seeded random ReLU networks.

For each architecture, a stack of random networks (Gaussian weights scaled by 1/sqrt(fan-in),
and a pruned copy with 70% of the entries zeroed) is bracketed by every method, batched over
members where the method is batched. The chain the law's comparison relies on is

    gradient <= lipsdp-neuron <= lipsdp-layer <= eclipse-fast <= spectral

(the names of ``LIPSCHITZ_METHODS``, each run through ``estimate_lipschitz``)
(LipSDP runs one network at a time, so it covers the first ``--lipsdp`` networks of each stack;
ECLipsE and the lower estimate cover all of them). The script prints, per architecture, the
number of networks, the number of violated links (must be 0), and the median and largest
ratios between neighbours, which say how tight each link is.

Usage::

    python benchmarks/bench_soundness.py                  # 2 x 4 x 500 = 4000 networks
    python benchmarks/bench_soundness.py --members 100    # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from robustlaw.empirical.lipschitz import estimate_lipschitz

ARCHITECTURES = ((3, 8, 1), (4, 10, 10, 2), (6, 12, 8, 3), (2, 6, 6, 6, 1))
TOL = 1e-6


def random_stack(sizes, n_members, seed, density):
    """Weights (n_members, out, in) per layer, input to output; entries kept with ``density``."""
    rng = np.random.default_rng(seed)
    stack = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.standard_normal((n_members, b, a)) / np.sqrt(a)
        stack.append(w * (rng.random(w.shape) < density))
    return stack


def bracket(stack, n_lipsdp, generator):
    """Every estimate of every member: a dict of arrays (NaN where LipSDP was not run)."""
    k = stack[0].shape[0]

    def run(name, net):
        return estimate_lipschitz(name, net, generator=generator, raise_on_failure=True).values

    values = {name: run(name, stack) for name in ("gradient", "eclipse-fast", "spectral")}
    head = [w[: min(k, n_lipsdp)] for w in stack]  # LipSDP solves one member at a time
    for name in ("lipsdp-neuron", "lipsdp-layer"):
        values[name] = np.full(k, np.nan)
        values[name][: head[0].shape[0]] = run(name, head)
    return values


CHAIN = (
    ("gradient", "lipsdp-neuron"),
    ("lipsdp-neuron", "lipsdp-layer"),
    ("lipsdp-layer", "eclipse-fast"),
    ("gradient", "eclipse-fast"),
    ("eclipse-fast", "spectral"),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500, help="networks per stack")
    parser.add_argument("--lipsdp", type=int, default=25, help="networks per stack for LipSDP")
    args = parser.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, tolerance {TOL:g}")
    header = f"{'architecture':<18} {'density':>7} {'nets':>5} {'link':<31} {'bad':>4}"
    print(f"{header} {'median ratio':>13} {'max ratio':>10}")
    total, violations = 0, 0
    start = time.perf_counter()
    for seed, sizes in enumerate(ARCHITECTURES):
        for density in (1.0, 0.3):
            stack = random_stack(sizes, args.members, seed, density)
            values = bracket(stack, args.lipsdp, gen)
            total += args.members
            for low, high in CHAIN:
                # networks whose constant is 0 (a layer pruned away) have no ratio to report
                ok = ~np.isnan(values[low]) & ~np.isnan(values[high]) & (values[low] > 0)
                ratio = values[high][ok] / values[low][ok]
                bad = int(np.sum(ratio < 1 - TOL))
                violations += bad
                spread = f"{np.median(ratio):>13.4f} {ratio.max():>10.3f}" if ratio.size else "-"
                print(
                    f"{str(sizes):<18} {density:>7} {ratio.size:>5} {low + ' <= ' + high:<31} "
                    f"{bad:>4} {spread}"
                )
    seconds = time.perf_counter() - start
    print(f"{total} networks, {violations} violated links, {seconds:.0f} s")


if __name__ == "__main__":
    main()
