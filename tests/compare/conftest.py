"""Synthetic ``lor-scaling`` rows with known answers: full records, Lipschitz values by formula.

Per (n, d), dataset and p = r n d (r in 1/8 ... 4): three search members whose smallest
certified value (the chosen one) is ``2 sqrt(nd/p) (1 + noise z)`` below p = nd and ``2``
beyond; both controls flat at 4. Pruned nets (random: data-independent, imp: data-dependent)
follow the same law in kept + mask bits. Two constructions: ``caps`` fits, ``grouped-min-norm``
neither fits nor meets its conditions.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest

SIZES = ((16, 4), (32, 8))
DATASETS = (0, 1, 2)
RATIOS = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4)
WEIGHTS = (0.1, 1.0, 10.0)
SCALE, PLATEAU, CONTROL = 2.0, 2.0, 4.0

DEFAULTS = dict(
    role="search", method="dense", density=1.0, dataset=0, seed=0, search_weight=None,
    chosen=False, n=16, d=4, width=8, depth=1, p=8, kept=8, kept_weights=6, prunable=6,
    data_dependent=False, mask_info_bits=0.0, mask_info_source="zero", n_steps=100,
    train_mse=0.3, fit_below_noise=True, lip_upper=None, lip_upper_method="spectral",
    lip_upper_status="ok", lip_sdp=None, lip_sdp_method="lipsdp-neuron",
    lip_sdp_status="skipped", lip_certified=None, lip_lower=None, lip_lower_method="gradient",
    lip_lower_status="skipped", lip_support=None, lip_support_method="gradient-sphere",
    lip_support_status="skipped", stated_lipschitz=None, conditions_hold=True, w_inf=1.0,
    in_box=True, weight_box=10.0, input_radius=1.0, input_norm_max=1.0, c=4 / 3, sigma2=1.0,
    eps=0.5, delta=0.1, W=10.0, J=10.0, p_eff=160.0, p_eff_informal=8.0, bound_bs=1e-2,
    bound_nfp=1e-3, k_condition_bs=False, k_condition_nfp=False, inputs="sphere",
    dtype="float32",
)  # fmt: skip
"""Every field of ``LorScalingRecord`` with a plain value."""


def record(**fields):
    """A full row: the defaults with ``fields`` replaced (unknown names are a test bug)."""
    unknown = set(fields) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"not record fields: {sorted(unknown)}")
    return DEFAULTS | fields


def _members(rows, value, **shape):
    nd = shape["n"] * shape["d"]
    floors = dict(bound_bs=1e-2 * math.sqrt(nd / shape["p"]),
                  bound_nfp=1e-3 * math.sqrt(nd / shape["p_eff"]))  # fmt: skip
    for i, w in enumerate(WEIGHTS):
        lip = value * (1 + i)
        lower = dict(lip_lower=lip / 3, lip_support=lip / 4) if i == 0 else {}
        rows.append(record(**shape, **floors, **lower, seed=i, search_weight=w, chosen=i == 0,
                           lip_upper=lip, lip_certified=lip))  # fmt: skip
    for role in ("first-fit", "interpolation"):
        rows.append(record(**shape, **floors, role=role, lip_upper=CONTROL,
                           lip_certified=CONTROL, lip_lower=CONTROL / 3))  # fmt: skip


def law_rows(noise=0.0, seed=0, sizes=SIZES, datasets=DATASETS, pruned=True, built=True):
    """The synthetic table (list of full rows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, d in sizes:
        nd = n * d
        ps = [round(r * nd) for r in RATIOS]
        for data in datasets:
            for p in ps:
                z = rng.standard_normal()
                law = (SCALE * math.sqrt(nd / p) if p < nd else PLATEAU) * (1 + noise * z)
                _members(rows, law, n=n, d=d, dataset=data, width=p, p=p, kept=p,
                         p_eff=20.0 * p, p_eff_informal=float(p))  # fmt: skip
            for method, bits_per_kept in (("random", 0.0), ("imp", 0.5)) if pruned else ():
                for density in (0.5, 0.1):
                    kept = round(density * ps[-1])
                    informal = kept * (1 + bits_per_kept)
                    law = SCALE * math.sqrt(nd / informal) if informal < nd else PLATEAU
                    _members(rows, law, n=n, d=d, dataset=data, width=ps[-1], p=ps[-1],
                             kept=kept, method=method, density=density,
                             data_dependent=bits_per_kept > 0, mask_info_bits=bits_per_kept * kept,
                             mask_info_source="entropy-bound" if bits_per_kept > 0 else "zero",
                             p_eff=20.0 * informal, p_eff_informal=informal)  # fmt: skip
            for name, ok in (("caps", True), ("grouped-min-norm", False)) if built else ():
                rows.append(record(role="construction", method=name, n=n, d=d, dataset=data,
                                   seed=-1, width=4 * nd, p=4 * nd, kept=4 * nd,
                                   fit_below_noise=ok, conditions_hold=ok, lip_certified=3.0,
                                   lip_lower=1.0, lip_support=0.5, stated_lipschitz=2.0,
                                   bound_bs=5e-3, bound_nfp=1e-3))  # fmt: skip
    return rows


@pytest.fixture(scope="session")
def law():
    """The builders and constants of this module (session scope: usable under hypothesis)."""
    return SimpleNamespace(rows=law_rows, record=record, SIZES=SIZES, DATASETS=DATASETS,
                           WEIGHTS=WEIGHTS, SCALE=SCALE, PLATEAU=PLATEAU,
                           CONTROL=CONTROL)  # fmt: skip


@pytest.fixture
def rows():
    """Noiseless rows."""
    return law_rows()


@pytest.fixture
def noisy_rows():
    """Rows with 5% multiplicative noise per (dataset, p)."""
    return law_rows(noise=0.05)
