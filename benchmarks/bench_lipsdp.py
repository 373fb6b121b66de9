"""LipSDP benchmark: the structured interior-point solver against cvxpy + SCS, side by side.

Run ``python benchmarks/bench_lipsdp.py`` (add ``--quick`` to stop at hidden size 200, or
``--large`` for the product-equivalent table of [20,h,h,1] with h = 500, 1000, 2000 only).
Every value printed is the certified one, sqrt(rho(lambda)) recomputed in float64 from the
solver's multipliers, so the columns compare like with like.

The fast solver's cost is also given in a machine-independent unit: its wall time divided by
the time of one dense float64 ``n x n`` product (``torch.matmul``, median of several, same
thread count, measured in the same process just before and after the solve), with
``n = n_0 + N`` the side of the LMI after compression. The load average is printed with every
row.

Torch (and, through threadpoolctl when it is installed, NumPy's BLAS) runs with ``--threads``
threads (default 1): on a loaded 2-core machine, two spinning OpenMP threads make small LAPACK
calls up to 100x slower.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import numpy as np
import scipy.io
import torch

from robustlaw.empirical.lipschitz import LipSDPOptions, lipsdp_layer, lipsdp_neuron

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "lipsdp")
SCS_EPS = 1e-9
#: Certified values of the solver before issue 14 (2026-11-23, unmodified code), the reference
#: of the product-equivalent table.
BEFORE = {500: 3.848223525332791, 1000: 5.143936706705302}


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


def product_time(n: int, repeats: int = 5) -> tuple[float, float]:
    """Median wall and CPU seconds of one float64 ``n x n`` torch.matmul (the unit)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, dtype=torch.float64, generator=gen)
    b = torch.randn(n, n, dtype=torch.float64, generator=gen)
    torch.matmul(a, b)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        torch.matmul(a, b)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def lmi_side(sizes: list[int]) -> int:
    """``n = n_0 + N`` after input compression (rank of W_0 is min(n_0, n_1) here)."""
    return min(sizes[0], sizes[1]) + sum(sizes[1:-1])


def costed(sizes: list[int]) -> dict:
    """One fast solve with its product time measured around it, and the load average.

    ``equivalents`` is the wall-time ratio of issue 14; ``cpu_equivalents`` the same ratio in
    process CPU time, which other processes on a shared machine disturb much less.
    """
    n = lmi_side(sizes)
    before, load0 = product_time(n), os.getloadavg()[0]
    ws = random_net(sizes, seed=0)
    start, start_cpu = time.perf_counter(), time.process_time()
    est = lipsdp_neuron(ws)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    after, load1 = product_time(n), os.getloadavg()[0]
    prod = statistics.median([before[0], after[0]])
    prod_cpu = statistics.median([before[1], after[1]])
    return {
        "value": est.value, "seconds": seconds, "n": n, "product": prod,
        "equivalents": seconds / prod, "cpu_equivalents": cpu / prod_cpu,
        "n_iter": est.n_iter, "load": (load0 + load1) / 2,
    }  # fmt: skip


def scaling(nets: list[list[int]], cvxpy_max: int) -> None:
    """[20,h,h,1] for growing h, plus [30,500,500,1]; cvxpy + SCS where it is feasible."""
    print("\n## Scaling, LipSDP-Neuron on [20,h,h,1] ReLU (cvxpy + SCS only for h <= 100)\n")
    print(
        "| net | N | n | fast s | product s | product-equivalents | fast value | load "
        "| SCS s | SCS value | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sizes in nets:
        row = costed(sizes)
        cells = "| – | – | – |"
        if sizes[1] <= cvxpy_max:
            v_scs, t_scs = timed(sizes, SCS)
            cells = f"| {t_scs:.2f} | {v_scs:.6f} | {t_scs / row['seconds']:.0f}x |"
        print(
            f"| {sizes} | {sum(sizes[1:-1])} | {row['n']} | {row['seconds']:.2f} "
            f"| {row['product']:.4f} | {row['equivalents']:.0f} | {row['value']:.6f} "
            f"| {row['load']:.1f} {cells}",
            flush=True,
        )


def large(hidden: list[int]) -> None:
    """The product-equivalent table of issue 14 on [20,h,h,1] (target: <= 200 for h <= 1000)."""
    print("\n## Product-equivalents, LipSDP-Neuron on [20,h,h,1] ReLU (target: <= 200)\n")
    print(
        "| net | N | n | seconds | iterations | product s | product-equivalents "
        "| CPU product-equivalents | certified value | relative difference to before | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for h in hidden:
        sizes = [20, h, h, 1]
        row = costed(sizes)
        ref = BEFORE.get(h)
        diff = "–" if ref is None else f"{(row['value'] - ref) / ref:.1e}"
        print(
            f"| {sizes} | {2 * h} | {row['n']} | {row['seconds']:.2f} | {row['n_iter']} "
            f"| {row['product']:.4f} | {row['equivalents']:.0f} | {row['cpu_equivalents']:.0f} "
            f"| {row['value']:.9f} | {diff} | {row['load']:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only h <= 200")
    parser.add_argument(
        "--large", action="store_true", help="only the product-equivalent table, h = 500..2000"
    )
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[500, 1000, 2000], help="h for --large"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NumPy keeps its own thread count
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(args.threads)
    with limits:
        run(args)


def run(args: argparse.Namespace) -> None:
    """The tables that ``args`` ask for."""
    print(
        f"# bench_lipsdp  {time.strftime('%Y-%m-%d %H:%M')}  torch {torch.__version__}, "
        f"{args.threads} thread(s), device {'cuda' if torch.cuda.is_available() else 'cpu'}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if args.large:
        large(args.hidden)
        return
    head_to_head()
    fixtures()
    hidden = [50, 100, 200] if args.quick else [50, 100, 200, 500, 1000]
    nets = [[20, h, h, 1] for h in hidden] + ([] if args.quick else [[30, 500, 500, 1]])
    scaling(nets, cvxpy_max=100)


if __name__ == "__main__":
    main()
