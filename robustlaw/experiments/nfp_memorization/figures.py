"""The figure of ``nfp-memorization`` (No Free Prune Fig. 1a) and the summary it plots.

Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), Fig. 1a: the fraction of
random labels memorized against density, one curve per pruning method, mean ± one standard
error over seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from robustlaw.compare._plot import STYLE
from robustlaw.experiments.nfp_memorization.settings import METHODS, PAPER_EXPONENTS
from robustlaw.experiments.summary import mean_se

__all__ = ["memorization_figure", "memorization_summary"]

Rows = list[dict[str, Any]]

_COLORS = {"imp": "C3", "synflow": "C2", "snip": "C0", "grasp": "C1", "random": "0.35"}
_LABELS = {"imp": "IMP", "synflow": "SynFlow", "snip": "SNIP", "grasp": "GraSP",
           "random": "Random"}  # fmt: skip


def memorization_summary(rows: Rows) -> dict[str, dict[str, np.ndarray]]:
    """Per method: target densities (decreasing) with the mean, standard error and seed count
    of the memorized fraction at each.

    The standard error is ``std / sqrt(seeds)`` (ddof 1; 0 for one seed).

    Examples
    --------
    >>> rows = [{"method": "random", "target_density": 0.5, "memorized_fraction": f}
    ...         for f in (0.2, 0.4)]
    >>> s = memorization_summary(rows)["random"]
    >>> s["density"].tolist(), s["mean"].tolist(), s["se"].round(3).tolist(), s["seeds"].tolist()
    ([0.5], [0.30000000000000004], [0.1], [2])
    """
    groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r["method"]][r["target_density"]].append(r["memorized_fraction"])
    out = {}
    for method, by_density in groups.items():
        densities = sorted(by_density, reverse=True)
        stats = np.asarray([mean_se(by_density[rho]) for rho in densities])
        out[method] = {
            "density": np.asarray(densities),
            "mean": stats[:, 0],
            "se": stats[:, 1],
            "seeds": np.asarray([len(by_density[rho]) for rho in densities]),
        }
    return out


def memorization_figure(rows: Rows, ax: Any = None) -> Any:
    """Memorized fraction against density (log axis, density falling to the right).

    One line per method (mean over seeds, band of ± one standard error), as NFP Fig. 1a.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    with rc_context(STYLE):
        if ax is None:
            ax = Figure(figsize=(6.6, 3.9)).subplots()
        ax.set_xlabel("density 0.8^j (fraction of weights kept; sparsity grows to the right)")
        ax.set_ylim(-0.03, 1.03)
        if not rows:
            ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
            return ax.figure
        summary = memorization_summary(rows)
        order = [m for m in METHODS if m in summary] + sorted(set(summary) - set(METHODS))
        for method in order:
            s = summary[method]
            label, color = _LABELS.get(method, method), _COLORS.get(method)
            (line,) = ax.plot(s["density"], s["mean"], "o-", ms=3, lw=1.3, color=color, label=label)
            low, high = s["mean"] - s["se"], s["mean"] + s["se"]
            ax.fill_between(s["density"], low, high, color=line.get_color(), alpha=0.2, lw=0)
        r, seeds = rows[0], len({row["seed"] for row in rows})
        margin = "ln(2)/10 nats" if r["loss"] == "cross-entropy" else f"{r['fit_margin']:g}"
        ax.set_title(
            f"Memorizing random labels (NFP Fig. 1a): n = {r['n_samples']}, d = {r['n_features']}"
            f"\n{r['inputs']} inputs, width {r['width']}, {seeds} seeds, mean ± SE"
        )
        ax.set_ylabel(f"fraction memorized (loss ≤ {margin})")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ticks = [(row["target_density"], row["exponent"]) for row in rows]
        ticks = sorted(set(ticks), reverse=True)[:: math.ceil(len(set(ticks)) / 6)]
        ax.set_xticks([t for t, _ in ticks], [f"{t:.2g}\nj = {j}" for t, j in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        last, base = max(PAPER_EXPONENTS), r["target_density"] ** (1 / r["exponent"])
        if max(row["exponent"] for row in rows) > last:  # the grid extends NFP's: mark its end
            ax.axvline(base**last, color="0.5", ls=":", lw=1, label=f"NFP's grid ends (j = {last})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return ax.figure
