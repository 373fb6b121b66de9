r"""Certify LipSDP multipliers: the smallest rho they prove, by a block Schur recursion.

For multipliers :math:`\lambda\ge0` write :math:`M_0(\lambda)=\sum_i\lambda_iG_i+C` on the
variables :math:`(x,z_1,\dots,z_L)` (Fazlyab et al., NeurIPS 2019, Theorem 2). If its hidden
block is negative definite, the LMI holds exactly for

.. math:: \rho(\lambda)=\lambda_{\max}\big(M_{00}-M_{0h}M_{hh}^{-1}M_{h0}\big),

and :math:`\operatorname{Lip}(f)\le\sqrt{\rho(\lambda)}`. :math:`M_0` is block tridiagonal:

- :math:`D_0=-2\alpha\beta W_0^\top\Lambda_1W_0`, the input block;
- :math:`D_l=-2\Lambda_l-2\alpha\beta W_l^\top\Lambda_{l+1}W_l` for :math:`1\le l<L`, and
  :math:`D_L=-2\Lambda_L+W_L^\top W_L`;
- :math:`O_l=(\alpha+\beta)W_{l-1}^\top\Lambda_l` couples :math:`z_{l-1}` and :math:`z_l`.

Eliminating :math:`z_L,\dots,z_1` in turn (:math:`S_L=D_L`,
:math:`S_{l-1}=D_{l-1}-O_lS_l^{-1}O_l^\top`) gives the Schur complement in
:math:`O(\sum_ln_l^3)`, the recursion of ECLipsE (Xu and Sivaranjani, NeurIPS 2024). Each
:math:`-S_l` must have a Cholesky factor, which is the test that :math:`M_{hh}\prec0`.
Everything runs in float64 NumPy, whatever device the solver used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg

from robustlaw.errors import SolverError

__all__ = ["certify_rho"]


def certify_rho(
    weights: Sequence[np.ndarray], multipliers: np.ndarray, slopes: tuple[float, float]
) -> float:
    r"""Return the smallest :math:`\rho` that per-unit multipliers certify, or raise.

    Parameters
    ----------
    weights : sequence of numpy.ndarray
        ``W_0, ..., W_L`` in ``(out, in)`` order, float64.
    multipliers : numpy.ndarray
        Shape ``(N,)``: one multiplier per hidden unit, in layer order (for LipSDP-Layer repeat
        each layer's multiplier over its units).
    slopes : tuple of float
        ``(alpha, beta)``, the activation's slope bounds.

    Returns
    -------
    float
        :math:`\rho(\lambda)\ge0`; the certified Lipschitz bound is its square root.

    Raises
    ------
    SolverError
        If a multiplier is negative or not finite, or if the hidden block is not negative
        definite (the multipliers certify nothing).

    Examples
    --------
    One hidden ReLU layer with identity input weights and output ``w = (3, 4)``: the
    multipliers ``lambda = ||w||^2 = 25`` certify ``rho = ||w||^2``, the exact value.

    >>> w = np.array([[3.0, 4.0]])
    >>> round(certify_rho([np.eye(2), w], np.array([25.0, 25.0]), (0.0, 1.0)), 12)
    25.0
    """
    alpha, beta = slopes
    lam = np.asarray(multipliers, dtype=np.float64)
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise SolverError("LipSDP multipliers must be finite and non-negative")
    sizes = [w.shape[0] for w in weights[:-1]]
    per_layer = np.split(lam, np.cumsum(sizes)[:-1])
    w_last = weights[-1]
    s_mat = -2.0 * np.diag(per_layer[-1]) + w_last.T @ w_last
    for layer in range(len(sizes), 0, -1):
        w_in, lam_l = weights[layer - 1], per_layer[layer - 1]
        try:
            chol = np.linalg.cholesky(-s_mat)
        except np.linalg.LinAlgError:
            raise SolverError(
                f"the multipliers certify nothing: the hidden block of layer {layer} of the "
                "LipSDP matrix is not negative definite"
            ) from None
        coupling = (alpha + beta) * (w_in.T * lam_l[None, :])  # O_l, shape (n_{l-1}, n_l)
        half = scipy.linalg.solve_triangular(chol, coupling.T, lower=True)
        s_mat = -2.0 * alpha * beta * (w_in.T * lam_l[None, :]) @ w_in + half.T @ half
        if layer > 1:
            s_mat = s_mat - 2.0 * np.diag(per_layer[layer - 2])
    rho = float(np.linalg.eigvalsh((s_mat + s_mat.T) / 2)[-1])
    return max(rho, 0.0)
