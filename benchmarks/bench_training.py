"""Batched ensemble training against a per-model PyTorch loop (issue 3, "Speed").

One training step (forward, backward, optimizer update, re-masking) of K masked MLPs:

* loop: K separate ``nn.Sequential`` models, each with its own ``torch.optim`` optimizer; the
  mask is multiplied into the weights before every forward (OpenLTH's rule), so pruned weights
  get zero gradient, and re-applied after the step;
* torch.func: PyTorch's model-ensembling recipe, what a researcher fluent in PyTorch writes
  instead of the loop: ``stack_module_state``, ``vmap(grad(loss))`` over
  ``functional_call``, one fused ``torch.optim.Adam`` (or SGD) over the stacked parameters,
  with the mask multiplied into the weights before each step;
* toolkit: :func:`robustlaw.empirical.train_ensemble`, timed twice: with
  ``kernels="dense"`` (stacked ``(K, out, in)`` weights, batched BLAS products) and with
  ``kernels="sparse"`` (each member's kept weights compressed, compiled sparse kernels); its
  default ``kernels="auto"`` takes the sparse kernels at densities up to
  ``SPARSE_DENSITY_LIMIT``.

Per-model throughput is ``time per step / K``. FLOPs per model step are counted as
``6 * batch * n_weights`` (forward 2, backward 4 multiply-adds per weight and example).

Usage::

    python benchmarks/bench_training.py            # CPU: K=256 masked 30-100-100-1 MLPs
    python benchmarks/bench_training.py --gpu      # CUDA: K=1024 masked 784-200-200-10 MLPs
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from robustlaw.empirical import MLPSpec, TrainOptions, init_mlp_ensemble, train_ensemble
from robustlaw.empirical.ensemble_io import member_to_sequential
from robustlaw.empirical.training import resolve_optimizer

CONFIGS = {
    "cpu": {"sizes": (30, 100, 100, 1), "k": 256, "batch": 64, "loss": "mse", "device": "cpu"},
    "gpu": {
        "sizes": (784, 200, 200, 10),
        "k": 1024,
        "batch": 64,
        "loss": "cross-entropy",
        "device": "cuda",
    },
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _data(cfg, gen):
    X = torch.randn(cfg["batch"], cfg["sizes"][0], generator=gen).to(cfg["device"])
    if cfg["loss"] == "mse":
        y = (torch.randint(0, 2, (cfg["batch"],), generator=gen) * 2 - 1).float()
    else:
        y = torch.randint(0, cfg["sizes"][-1], (cfg["batch"],), generator=gen)
    return X, y.to(cfg["device"])


TORCH_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def _per_step(step, steps: int, device: str) -> float:
    """Seconds per call of ``step()`` over ``steps`` calls, after one warm-up call."""
    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - start) / steps


def time_loop(ens, X, y, cfg, n_models: int, steps: int, optimizer: str) -> float:
    """Seconds per step of the per-model loop, for ``n_models`` of the members."""
    nets = [member_to_sequential(ens, k) for k in range(n_models)]
    masks = [{k: m[i] for k, m in ens.masks.items()} for i in range(n_models)]
    opts = [TORCH_OPTIMIZERS[optimizer](net.parameters(), lr=1e-3) for net in nets]
    loss_fn = nn.MSELoss() if cfg["loss"] == "mse" else nn.CrossEntropyLoss()
    target = y.unsqueeze(-1) if cfg["loss"] == "mse" else y

    def step() -> None:
        for net, mask, opt in zip(nets, masks, opts, strict=True):
            with torch.no_grad():
                for name, p in net.named_parameters():
                    if name in mask:
                        p.mul_(mask[name])
            opt.zero_grad()
            loss_fn(net(X), target).backward()
            opt.step()

    return _per_step(step, steps, cfg["device"])


def time_func_recipe(ens, X, y, cfg, steps: int, optimizer: str) -> float:
    """Seconds per step of PyTorch's ``torch.func`` model-ensembling recipe on all K members."""
    models = [member_to_sequential(ens, k) for k in range(ens.n_members)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    masks = {k: m.to(params[k].dtype) for k, m in ens.masks.items()}
    target = y.unsqueeze(-1) if cfg["loss"] == "mse" else y
    loss_fn = nn.functional.mse_loss if cfg["loss"] == "mse" else nn.functional.cross_entropy

    def member_loss(p, b, x, t):
        return loss_fn(functional_call(base, (p, b), (x,)), t)

    member_grads = vmap(grad(member_loss), in_dims=(0, 0, None, None))
    fused = {"fused": True} if optimizer == "adam" else {}
    opt = TORCH_OPTIMIZERS[optimizer](params.values(), lr=1e-3, **fused)

    def step() -> None:
        with torch.no_grad():
            for name, m in masks.items():
                params[name].mul_(m)
        grads = member_grads(params, buffers, X, target)
        for name, p in params.items():
            p.grad = grads[name]
        opt.step()

    return _per_step(step, steps, cfg["device"])


def gemm_peak(device: str, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of one large float32 ``n x n`` matmul: what the hardware allows, same process."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def time_batched(ens, X, y, cfg, steps: int, optimizer: str, kernels: str) -> float:
    """Seconds per step of :func:`train_ensemble` (one call of ``steps`` steps, minus one)."""
    part = replace(resolve_optimizer(optimizer), lr=1e-3)
    base = TrainOptions(optimizer=part, loss=cfg["loss"], kernels=kernels)
    opts = replace(base, max_steps=steps)
    train_ensemble(ens, X, y, replace(base, max_steps=2))
    one = replace(base, max_steps=1)
    _sync(cfg["device"])
    start = time.perf_counter()
    train_ensemble(ens, X, y, one)
    _sync(cfg["device"])
    fixed = time.perf_counter() - start
    start = time.perf_counter()
    train_ensemble(ens, X, y, opts)
    _sync(cfg["device"])
    return (time.perf_counter() - start - fixed) / (steps - 1)


def _line(k: str, density: str, ms: list[str], rates: list[str], ratios: list[str]) -> str:
    """One line of the table, every cell right-aligned in its column's width."""
    cells = [f"{k:>6}", f"{density:>8}", *(f"{c:>10}" for c in ms)]
    return " ".join(cells + [f"{c:>14}" for c in rates] + [f"{c:>12}" for c in ratios])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="run the CUDA configuration")
    parser.add_argument("--k", type=int, nargs="*", help="ensemble sizes (default: the config's)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--loop-models", type=int, help="models timed in the loop (default K)")
    parser.add_argument(
        "--density", type=float, nargs="*", default=[0.1], help="kept fractions per mask"
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default torch's)")
    parser.add_argument("--optimizer", default="adam", choices=sorted(TORCH_OPTIMIZERS))
    parser.add_argument("--batch", type=int, help="examples per step (default 64)")
    parser.add_argument("--device", help="override the configuration's device")
    parser.add_argument("--sizes", type=int, nargs="+", help="layer sizes (default the config's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = dict(CONFIGS["gpu" if args.gpu else "cpu"])
    cfg["batch"] = args.batch or cfg["batch"]
    cfg["device"] = args.device or cfg["device"]
    cfg["sizes"] = tuple(args.sizes or cfg["sizes"])
    gen = torch.Generator().manual_seed(0)
    X, y = _data(cfg, gen)
    spec = MLPSpec(layer_sizes=cfg["sizes"])
    print(
        f"device={cfg['device']} sizes={cfg['sizes']} batch={cfg['batch']} "
        f"optimizer={args.optimizer} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(f"GEMM peak: {gemm_peak(cfg['device']):.1f} GFLOP/s (float32 2048x2048 matmul)")
    kernels = ("dense", "sparse") if cfg["device"] == "cpu" else ("dense",)
    columns = ("loop", "func", *kernels)
    print("ms per step; GFLOP/s counts the dense work of the same shapes; ratios: func / toolkit")
    print(
        _line(
            "K",
            "density",
            [f"{name} ms" for name in columns],
            [f"{name} GFLOP/s" for name in columns[1:]],
            [f"func/{name}" for name in kernels],
        )
    )
    for k in args.k or [cfg["k"]]:
        for density in args.density:
            ens = init_mlp_ensemble(spec, seeds=range(k), device=cfg["device"])
            masks = {
                n: torch.rand(m.shape, generator=gen).to(m.device) < density
                for n, m in ens.masks.items()
            }
            ens = ens.with_masks(masks)
            n_loop = min(k, args.loop_models or k)
            loop_steps = max(2, args.steps // 4)
            loop = time_loop(ens, X, y, cfg, n_loop, loop_steps, args.optimizer) / n_loop * k
            times = [loop, time_func_recipe(ens, X, y, cfg, args.steps, args.optimizer)]
            times += [
                time_batched(ens, X, y, cfg, args.steps, args.optimizer, name) for name in kernels
            ]
            flops = 6 * cfg["batch"] * spec.n_weights() * k  # the dense work of the same shapes
            print(
                _line(
                    str(k),
                    f"{density:.3f}",
                    [f"{t * 1e3:.2f}" for t in times],
                    [f"{flops / t / 1e9:.1f}" for t in times[1:]],
                    [f"{times[1] / t:.2f}" for t in times[2:]],
                )
            )


if __name__ == "__main__":
    main()
