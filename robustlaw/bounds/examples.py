"""Named settings of THEORY §5 (and a few more) with their bounds, as table rows.

``robustlaw demo`` prints :func:`format_bounds_table` of :func:`bounds_table`. The values are
evaluated with ``check_assumptions=False``: several worked examples violate the k-condition on
purpose, and the table reports that next to the value instead of dropping the row.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from robustlaw.bounds.assumptions import BS_K_CONDITION_CONST, NFP_K_CONDITION_CONST
from robustlaw.bounds.assumptions import k_condition_holds as _k_holds
from robustlaw.bounds.deep import (
    box_to_euclidean_diameter,
    mlp_parameter_count,
    parameter_lipschitz_constant,
)
from robustlaw.bounds.numeric import lipschitz_lower_bound, sparse_lipschitz_lower_bound
from robustlaw.bounds.peff import effective_parameter_count, mask_entropy_upper_bound

__all__ = ["Setting", "bounds_table", "examples", "format_bounds_table"]


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One named setting: data, class size, accuracy and (for NFP) the mask.

    ``W`` is the Euclidean diameter of the weight set. ``kept`` and
    ``mutual_information_bits`` define ``p_eff``; ``kept`` defaults to ``p`` (a dense network).
    """

    name: str
    description: str
    n: float
    d: float
    p: float
    eps: float
    delta: float
    W: float
    J: float
    c: float = 1.0
    k: int = 1
    kept: float | None = None
    mutual_information_bits: float = 0.0


def _deep_setting(form: str) -> Setting:
    p = mlp_parameter_count([784, 200, 200, 10])
    return Setting(
        name=f"C-J_{form}",
        description=f"ReLU MLP 784-200-200-10 (D=3, Q=1, R=1, W_inf=1), J = J_{form}",
        n=6e4,
        d=784,
        p=p,
        eps=0.5,
        delta=0.1,
        W=box_to_euclidean_diameter(W_inf=1.0, p=p),
        J=parameter_lipschitz_constant(R=1.0, W_inf=1.0, p=p, D=3, form=form),
    )


@functools.cache
def examples() -> dict[str, Setting]:
    """Return the named settings, keyed by name (THEORY §5 A, B, C, the CLI example, IMP)."""
    a = dict(n=1e4, d=100, p=1e3, eps=0.1, delta=0.01, W=10.0, J=10.0)
    b = dict(n=6e4, d=784, p=1e5, eps=0.5, delta=0.1, W=1.0, J=1.0)
    big = dict(n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10.0, J=10.0)
    settings = [
        Setting(name="A", description="BS vs NFP, dense mask, I = 0", **a),
        Setting(
            name="A-I5000",
            description="as A, mask information 5000 bits",
            mutual_information_bits=5000.0,
            **a,
        ),
        Setting(name="B-mnist", description="MNIST scale, c = 1", **b),
        Setting(name="B-mnist-c=d", description="MNIST scale, standard normal data", c=784.0, **b),
        _deep_setting("bs"),
        _deep_setting("tight"),
        Setting(name="mnist-1e6", description="the `robustlaw bound` example", **big),
        Setting(name="pai-99%", description="as mnist-1e6, 1% kept by PaI, I = 0", kept=1e4, **big),
        Setting(
            name="imp-99%",
            description="as mnist-1e6, 1% kept by IMP, I = log2 binom(p, kept)",
            kept=1e4,
            mutual_information_bits=mask_entropy_upper_bound(1e6, 1e4),
            **big,
        ),
    ]
    return {s.name: s for s in settings}


def bounds_table() -> list[dict[str, float | str | bool]]:
    """Evaluate both Lipschitz bounds at every named setting.

    Returns
    -------
    list of dict
        One row per setting with keys ``setting``, ``n``, ``d``, ``p``, ``c``, ``L_BS``,
        ``sqrt_nd_over_p`` (the rate without constants), ``p_eff`` (bits), ``L_NFP``,
        ``k_condition_bs`` (8^4) and ``k_condition_nfp`` (8^3).

    Examples
    --------
    >>> rows = {r["setting"]: r for r in bounds_table()}
    >>> ratio = rows["B-mnist"]["L_BS"] / rows["B-mnist-c=d"]["L_BS"]
    >>> round(ratio ** 2)
    784
    """
    rows = []
    for s in examples().values():
        common = dict(n=s.n, d=s.d, eps=s.eps, delta=s.delta, c=s.c, k=s.k)
        p_eff = effective_parameter_count(
            kept=s.p if s.kept is None else s.kept,
            mutual_information_bits=s.mutual_information_bits,
            W=s.W,
            J=s.J,
            eps=s.eps,
        )
        cond = dict(n=s.n, eps=s.eps, delta=s.delta, k=s.k)
        rows.append(
            {
                "setting": s.name,
                "n": s.n,
                "d": s.d,
                "p": s.p,
                "c": s.c,
                "L_BS": lipschitz_lower_bound(
                    p=s.p, W=s.W, J=s.J, check_assumptions=False, **common
                ),
                "sqrt_nd_over_p": math.sqrt(s.n * s.d / s.p),
                "p_eff": p_eff,
                "L_NFP": sparse_lipschitz_lower_bound(
                    p_eff=p_eff, check_assumptions=False, **common
                ),
                "k_condition_bs": _k_holds(**cond, k_condition_const=BS_K_CONDITION_CONST),
                "k_condition_nfp": _k_holds(**cond, k_condition_const=NFP_K_CONDITION_CONST),
            }
        )
    return rows


_COLUMNS = (
    ("setting", "setting", "{}"),
    ("n", "n", "{:.3g}"),
    ("d", "d", "{:.0f}"),
    ("p", "p", "{:.4g}"),
    ("c", "c", "{:.0f}"),
    ("L_BS", "L_BS", "{:.3e}"),
    ("sqrt_nd_over_p", "sqrt(nd/p)", "{:.3g}"),
    ("p_eff", "p_eff[bits]", "{:.4g}"),
    ("L_NFP", "L_NFP", "{:.3e}"),
    ("k_condition_bs", "k-cond 8^4", "{!s}"),
    ("k_condition_nfp", "k-cond 8^3", "{!s}"),
)


def format_bounds_table(rows: list[dict[str, float | str | bool]] | None = None) -> str:
    """Format bound rows (default :func:`bounds_table`) as a fixed-width text table."""
    rows = bounds_table() if rows is None else rows
    columns = [[head] + [fmt.format(r[key]) for r in rows] for key, head, fmt in _COLUMNS]
    widths = [max(map(len, col)) for col in columns]
    lines = [
        "  ".join(
            cell.ljust(w) if j == 0 else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in zip(*columns, strict=True)
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
