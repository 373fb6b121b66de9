"""The interior-point solver's structural shortcuts against the explicit matrices they replace.

Each shortcut of :mod:`robustlaw.empirical.lipschitz.sdp_solver` (the dual slack kept implicit,
``forward(X R_d Z)`` read off the Schur complement, the symmetric Gram blocks, the tiled
transposed addition, the warm-started Lanczos step length) is compared with the dense
computation it stands for, on random data, to about 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz.sdp_solver import (
    _Newton,
    _Operators,
    _Point,
    _Residual,
)
from robustlaw.empirical.lipschitz.sdp_steps import DENSE_EIG, cone_step
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure, add_transposed

SLOPES = [(0.0, 1.0), (0.01, 1.0), (1.0, 1.0)]


def structure(sizes, slopes, seed=0):
    """An LMIStructure of Gaussian weights, LipSDP-Neuron (one multiplier per unit)."""
    rng = np.random.default_rng(seed)
    ws = [
        torch.as_tensor(rng.standard_normal((b, a)) / np.sqrt(a))
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    n_hidden = sum(sizes[1:-1])
    return LMIStructure(ws, slopes, torch.arange(n_hidden), n_hidden)


def spd(n, rng, shift=1.0):
    a = torch.as_tensor(rng.standard_normal((n, n)))
    return a @ a.T / n + shift * torch.eye(n, dtype=torch.float64)


def explicit_adjoint(st, y):
    """``sum_k y_k A_k`` with ``A_rho = -E_0``, from ``g_of`` (checked against the dense LMI in
    test_lipsdp.py)."""
    out = st.g_of(y[:-1])
    out[: st.n_in, : st.n_in] -= y[-1] * torch.eye(st.n_in, dtype=torch.float64)
    return out


def close(got, want, tol=1e-12):
    scale = max(1.0, float(want.abs().max()))
    assert float((got - want).abs().max()) <= tol * scale


@pytest.mark.parametrize("slopes", SLOPES)
def test_implicit_slack_equals_the_explicit_one(slopes):
    """S = C~ - A*(y) - nu R_0 and dS = nu R_0 - A*(dy), as the old solver formed them."""
    st = structure([4, 7, 6, 2], slopes)
    ops, rng, n = _Operators(st), np.random.default_rng(1), st.dim
    y0, y, dy = (torch.as_tensor(rng.standard_normal(st.n_multipliers + 1)) for _ in range(3))
    nu, eta, t = 0.3, 1.7, 0.4
    eye = torch.eye(n, dtype=torch.float64)
    r0 = -st.constant - explicit_adjoint(st, y0) - eta * eye
    res = _Residual(nu=nu, y0=y0, eta=eta, norm=float(torch.linalg.matrix_norm(r0)))
    s = -st.constant - explicit_adjoint(st, y) - nu * r0
    ds = -explicit_adjoint(st, dy) + nu * r0
    close(res.slack(y).dense(ops), s)
    close(res.move(dy).dense(ops), ds)
    close(res.shrunk(t).slack(y + t * dy).dense(ops), s + t * ds)  # a step keeps the form
    z, x = spd(n, rng), spd(n, rng)
    close(res.move(dy).times(ops, z, st.apply_a(z)), ds @ z)
    close(res.slack(y).times(ops, z[:, :3], st.apply_a(z[:, :3])), s @ z[:, :3])
    got = res.slack(y).inner(ops, x, ops.forward(x))
    assert abs(got - float((s * x).sum())) <= 1e-12 * float(s.abs().sum() * x.abs().max())


@pytest.mark.parametrize("slopes", SLOPES)
def test_base_is_forward_of_x_rd_z_without_the_products(slopes):
    """``forward(X R_d Z)`` from the Schur complement equals the dense product's."""
    st = structure([4, 7, 6, 2], slopes)
    ops, rng, n, m = _Operators(st), np.random.default_rng(2), st.dim, st.n_multipliers
    y0, y = (0.1 * torch.as_tensor(rng.standard_normal(m + 1)) for _ in range(2))
    eye = torch.eye(n, dtype=torch.float64)
    r0 = -st.constant - explicit_adjoint(st, y0) - 10.0 * eye
    res = _Residual(nu=0.6, y0=y0, eta=10.0, norm=float(torch.linalg.matrix_norm(r0)))
    x, s = spd(n, rng), res.slack(y).dense(ops)
    pt = _Point(x, torch.ones(m, dtype=torch.float64), y + 1.0, ops.forward(x))
    factors = torch.linalg.cholesky(x), torch.linalg.cholesky(s)
    newton = _Newton(ops, pt, torch.zeros(m + 1, dtype=torch.float64), res, factors, (None, None))
    z = torch.linalg.inv(s)
    close(newton.z, z, 1e-10)
    close(newton.base, ops.forward(x @ (res.nu * r0) @ z), 1e-10)


@pytest.mark.parametrize("sizes", [[4, 7, 6, 2], [9, 3, 8, 5, 2], [3, 5, 9, 4, 1]])
def test_symmetric_gram_blocks_equal_a_y_a_t(sizes):
    st = structure(sizes, (0.0, 1.0))
    y = spd(st.dim, np.random.default_rng(3))
    a = st.apply_a(torch.eye(st.dim, dtype=torch.float64))
    close(st.gram(st.apply_a(y)), a @ y @ a.T)


def test_tiled_transposed_addition_crosses_tile_edges():
    rng = np.random.default_rng(4)
    big = torch.as_tensor(rng.standard_normal((1100, 1130)))
    a, b = big[:, 30:], big[:, :1100]  # strided views, 1100 = 2 tiles and a remainder
    close(add_transposed(a, b, alpha=-0.7), a - 0.7 * b.T, 1e-15)
    out = torch.empty(1101, 1101, dtype=torch.float64)[:1100, :1100]
    assert add_transposed(a, a, out=out) is out
    close(out, a + a.T, 1e-15)


def test_warm_started_lanczos_finds_the_step_in_fewer_products():
    """A separated smallest eigenvalue of ``L^-1 D L^-T`` (-2: the step is 1/2) is found from
    the fixed start, and again, in fewer products, from the warm start it left."""
    n, rng = DENSE_EIG + 44, np.random.default_rng(5)
    chol = torch.linalg.cholesky(spd(n, rng))
    q, _ = torch.linalg.qr(torch.as_tensor(rng.standard_normal((n, n))))
    eigs = torch.cat([torch.tensor([-2.0], dtype=torch.float64), torch.linspace(-1.0, 1.0, n - 1)])
    d = chol @ (q * eigs) @ q.T @ chol.T
    calls = []

    def apply(u):
        calls.append(u.shape)
        return d @ u

    t, warm = cone_step(chol, apply, 24, 1e-12)
    cold = len(calls)
    assert 0.5 * (1 - 1e-12) <= t <= 0.5 * (1 + 1e-9)  # a Ritz value is never below the min
    calls.clear()
    t_again, _ = cone_step(chol, apply, 24, 1e-12, warm)
    assert abs(t_again - 0.5) <= 0.5e-9
    assert len(calls) < cold
