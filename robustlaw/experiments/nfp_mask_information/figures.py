"""Figures of ``nfp-mask-information``: NFP Fig. 4 and the sampled estimators against exact.

Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), Fig. 4: mask information
in bits against the number of parameters pruned, one panel per model, one curve per method,
under the ceiling ``log2 binom(p, k)``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from robustlaw.compare._plot import STYLE, legend_outside, new_axes, proxy

__all__ = ["estimator_figure", "information_figure", "information_summary"]

Rows = list[dict[str, Any]]

_COLORS = {"imp": "C3", "magnitude-after": "C1", "snip": "C0", "grasp": "C2", "synflow": "C4",
           "random": "0.45"}  # fmt: skip
_LABELS = {"imp": "IMP", "magnitude-after": "MagAfter", "snip": "SNIP", "grasp": "GraSP",
           "synflow": "SynFlow (data-free)", "random": "Random (data-free)"}  # fmt: skip
_STYLES = {"plug-in": "-", "miller-madow": "--", "jackknife": ":"}


def _primary(rows: Rows) -> str:
    """The estimator the main figure plots: exact when present, else the first sampled one."""
    names = [r["estimator"] for r in rows]
    return "exact" if "exact" in names else names[0]


def information_summary(rows: Rows, estimator: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (variant, method): counts pruned with the bits' mean, low and high over inits.

    ``low`` and ``high`` span every init's value and, for sampled estimates, its bootstrap
    interval.

    Examples
    --------
    >>> rows = [{"variant": "regression", "method": "imp", "estimator": "exact", "n_pruned": 1,
    ...          "bits": b, "ci_low": None, "ci_high": None} for b in (1.0, 2.0)]
    >>> s = information_summary(rows, "exact")["regression", "imp"]
    >>> s["n_pruned"].tolist(), s["mean"].tolist(), s["low"].tolist(), s["high"].tolist()
    ([1], [1.5], [1.0], [2.0])
    """
    groups: dict[tuple[str, str], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["estimator"] == estimator:
            groups[r["variant"], r["method"]][r["n_pruned"]].append(r)
    out = {}
    for key, by_count in groups.items():
        counts = sorted(by_count)
        cells = [by_count[k] for k in counts]
        out[key] = {
            "n_pruned": np.asarray(counts),
            "mean": np.asarray([np.mean([r["bits"] for r in c]) for c in cells]),
            "low": np.asarray([min(_low(r) for r in c) for c in cells]),
            "high": np.asarray([max(_high(r) for r in c) for c in cells]),
        }
    return out


def _low(r: dict) -> float:
    return r["bits"] if r["ci_low"] is None else min(r["bits"], r["ci_low"])


def _high(r: dict) -> float:
    return r["bits"] if r["ci_high"] is None else max(r["bits"], r["ci_high"])


def _order(methods) -> list[str]:
    return [m for m in _COLORS if m in methods] + sorted(set(methods) - set(_COLORS))


def _ceilings(ax: Any, rows: Rows) -> float:
    """Draw ``log2 binom(p, k)`` and ``H(D)``; return the y-limit that shows the curves."""
    by_k = {r["n_pruned"]: r["ceiling_bits"] for r in rows}
    ks = np.asarray(sorted(by_k))
    ax.plot(ks, [by_k[k] for k in ks], "--", color="0.5", lw=1)
    h_data = rows[0]["data_entropy_bits"]
    ax.axhline(h_data, color="0.5", lw=1, ls=":")
    top = max(max(_high(r) for r in rows), h_data)
    return 1.12 * top


def information_figure(rows: Rows, axes: Any = None) -> Any:
    """Mask information [bits] against parameters pruned, one panel per variant (NFP Fig. 4).

    Each method is a line (the mean over inits of the exact value, or of the first sampled
    estimator when there is no exact one) with a band from the lowest to the highest init
    (widened by the bootstrap intervals of sampled estimates). The dashed line is the ceiling
    ``log2 binom(p, k)``, the dotted one ``H(D)``; the y-axis stops above ``H(D)``.
    """
    from matplotlib import rc_context

    variants = sorted({r["variant"] for r in rows}, reverse=True)
    with rc_context(STYLE):
        fig, panels = new_axes(1, max(len(variants), 1), axes)
        if not rows:
            panels[0].text(0.5, 0.5, "no rows", ha="center", va="center")
            return fig
        estimator = _primary(rows)
        summary = information_summary(rows, estimator)
        entries = []
        for ax, variant in zip(panels, variants, strict=False):
            mine = [r for r in rows if r["variant"] == variant and r["estimator"] == estimator]
            top = _ceilings(ax, mine)
            n_inits = len({r["init_seed"] for r in mine})
            for method in _order({r["method"] for r in mine}):
                s = summary[variant, method]
                color = _COLORS.get(method)
                ax.fill_between(s["n_pruned"], s["low"], s["high"], color=color, alpha=0.2, lw=0)
                ax.plot(s["n_pruned"], s["mean"], "o-", ms=3, color=color, lw=1.4)
                entries.append((proxy(color=color, marker="o", ms=3), _LABELS.get(method, method)))
            p = mine[0]["n_params"]
            ax.set(xlim=(-0.5, p + 0.5), ylim=(-0.3, top), xlabel="parameters pruned (of p)",
                   ylabel=f"I(m; D | init) [bits], {estimator}",
                   title=f"{variant}: p = {p}, {n_inits} init(s)")  # fmt: skip
        entries += [
            (proxy(color="0.5", ls="--"), "ceiling log2 C(p, k)"),
            (proxy(color="0.5", ls=":"), "H(D) = log2 #datasets"),
        ]
        legend_outside(fig, panels, entries)
    return fig


def estimator_figure(rows: Rows, axes: Any = None) -> Any:
    """Sampled estimate minus the exact value [bits] against parameters pruned, per variant.

    Each method (color) and estimator (line style: plug-in solid, Miller–Madow dashed,
    jackknife dotted) is the mean over inits, with the bootstrap interval's mean offset as a
    band for the plug-in. Zero means the estimator recovers the exact information.
    """
    from matplotlib import rc_context

    variants = sorted({r["variant"] for r in rows}, reverse=True)
    exact = {(r["variant"], r["init_seed"], r["method"], r["n_pruned"]): r["bits"]
             for r in rows if r["estimator"] == "exact"}  # fmt: skip
    sampled = [r for r in rows if r["estimator"] != "exact"]
    with rc_context(STYLE):
        fig, panels = new_axes(1, max(len(variants), 1), axes)
        if not exact or not sampled:
            panels[0].text(0.5, 0.5, "needs exact and sampled rows", ha="center", va="center")
            return fig
        methods, estimators = set(), set()
        for ax, variant in zip(panels, variants, strict=False):
            diffs: dict[tuple[str, str], dict[int, list]] = defaultdict(lambda: defaultdict(list))
            for r in sampled:
                if r["variant"] == variant:
                    ref = exact[variant, r["init_seed"], r["method"], r["n_pruned"]]
                    cell = (r["bits"] - ref, _low(r) - ref, _high(r) - ref)
                    diffs[r["method"], r["estimator"]][r["n_pruned"]].append(cell)
            for (method, name), by_k in sorted(diffs.items()):
                ks = np.asarray(sorted(by_k))
                mean = np.asarray([np.mean(by_k[k], axis=0) for k in ks])
                color = _COLORS.get(method)
                if name == "plug-in":
                    ax.fill_between(ks, mean[:, 1], mean[:, 2], color=color, alpha=0.12, lw=0)
                ax.plot(ks, mean[:, 0], _STYLES.get(name, "-."), color=color, lw=1.2)
                methods.add(method)
                estimators.add(name)
            ax.axhline(0, color="0.3", lw=0.8)
            n = sampled[0]["n_datasets"]
            ax.set(xlabel="parameters pruned", ylabel="sampled - exact [bits], mean over inits",
                   title=f"{variant}: {n} sampled datasets")  # fmt: skip
        entries = [(proxy(color=_COLORS.get(m)), _LABELS.get(m, m)) for m in _order(methods)]
        entries += [(proxy(color="0.3", ls=_STYLES.get(e, "-.")), e) for e in sorted(estimators)]
        entries.append((proxy(color="0.3", lw=6, alpha=0.2), "plug-in 95% bootstrap interval"))
        legend_outside(fig, panels, entries)
    return fig
