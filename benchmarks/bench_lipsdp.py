"""LipSDP benchmark: the structured interior-point solver against cvxpy + SCS, side by side.

Run ``python benchmarks/bench_lipsdp.py`` (add ``--quick`` to stop at hidden size 200).
Every value printed is the certified one, sqrt(rho(lambda)) recomputed in float64 from the
solver's multipliers, so the columns compare like with like.

Torch runs with ``--threads`` threads (default 1): on a loaded 2-core machine, two spinning
OpenMP threads make small LAPACK calls up to 100x slower.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.io
import torch

from robustlaw.empirical.lipschitz import LipSDPOptions, lipsdp_layer, lipsdp_neuron

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "lipsdp")
SCS_EPS = 1e-9


def random_net(sizes: list[int], seed: int) -> list[np.ndarray]:
    """Gaussian weights scaled by 1/sqrt(fan-in), the reference's random ReLU MLP."""
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]


_CACHE: dict[tuple, tuple[float, float]] = {}
SCS = LipSDPOptions(solver="SCS", cvxpy_eps=SCS_EPS)


def timed(sizes: list[int], options: LipSDPOptions | None = None) -> tuple[float, float]:
    """(certified value, seconds) of one LipSDP-Neuron call on ``random_net(sizes, seed=0)``."""
    key = (tuple(sizes), options)
    if key not in _CACHE:
        ws = random_net(sizes, seed=0)
        start = time.perf_counter()
        est = lipsdp_neuron(ws, options)
        _CACHE[key] = (est.value, time.perf_counter() - start)
    return _CACHE[key]


def head_to_head() -> None:
    """LipSDP-Neuron on [20,100,100,1]: fast vs cvxpy + SCS on the same weights."""
    v_fast, t_fast = timed([20, 100, 100, 1])
    v_scs, t_scs = timed([20, 100, 100, 1], SCS)
    print("\n## LipSDP-Neuron, [20,100,100,1] ReLU (target: fast <= 1 s, within 1e-4)\n")
    print("| backend | seconds | certified value | speed-up | relative difference |")
    print("|---|---|---|---|---|")
    print(f"| cvxpy + SCS (eps {SCS_EPS:g}) | {t_scs:.2f} | {v_scs:.8f} | 1x | |")
    print(
        f"| fast (IPM) | {t_fast:.2f} | {v_fast:.8f} | {t_scs / t_fast:.0f}x | "
        f"{abs(v_fast - v_scs) / v_scs:.1e} |"
    )


def fixtures() -> None:
    """The two LipSDP example networks."""
    if not os.path.isdir(FIXTURES):
        print("\n(fixtures not found beside the checkout: skipped)")
        return
    print("\n## LipSDP example networks (fast backend)\n")
    print("| network | variant | seconds | certified value | expected |")
    print("|---|---|---|---|---|")
    for name, expected in (
        ("random_weights", "36.4822296 (exact)"),
        ("mnist_weights", "<= 31.5035"),
    ):
        ws = list(scipy.io.loadmat(os.path.join(FIXTURES, f"{name}.mat"))["weights"].ravel())
        for variant, method in (("neuron", lipsdp_neuron), ("layer", lipsdp_layer)):
            start = time.perf_counter()
            value = method(ws).value
            seconds = time.perf_counter() - start
            print(f"| {name} | {variant} | {seconds:.2f} | {value:.7f} | {expected} |")


def scaling(nets: list[list[int]], cvxpy_max: int) -> None:
    """[20,h,h,1] for growing h, plus [30,500,500,1]; cvxpy + SCS where it is feasible."""
    print("\n## Scaling, LipSDP-Neuron on [20,h,h,1] ReLU (cvxpy + SCS only for h <= 100)\n")
    print("| net | N | fast s | fast value | SCS s | SCS value | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for sizes in nets:
        v_fast, t_fast = timed(sizes)
        cells = "| – | – | – |"
        if sizes[1] <= cvxpy_max:
            v_scs, t_scs = timed(sizes, SCS)
            cells = f"| {t_scs:.2f} | {v_scs:.6f} | {t_scs / t_fast:.0f}x |"
        print(f"| {sizes} | {sum(sizes[1:-1])} | {t_fast:.2f} | {v_fast:.6f} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only h <= 200")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# bench_lipsdp  {time.strftime('%Y-%m-%d %H:%M')}  torch {torch.__version__}, "
        f"{args.threads} thread(s), device {'cuda' if torch.cuda.is_available() else 'cpu'}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    head_to_head()
    fixtures()
    hidden = [50, 100, 200] if args.quick else [50, 100, 200, 500, 1000]
    nets = [[20, h, h, 1] for h in hidden] + ([] if args.quick else [[30, 500, 500, 1]])
    scaling(nets, cvxpy_max=100)


if __name__ == "__main__":
    main()
