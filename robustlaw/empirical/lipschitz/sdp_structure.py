r"""The LipSDP linear matrix inequality as structured linear operators (torch, any device).

The LMI of Fazlyab et al. (NeurIPS 2019, arXiv 1906.04893, Theorem 2) in affine form is
:math:`M(\rho,\lambda)=\sum_i\lambda_iG_i-\rho E_0+C\preceq0` on the variables
:math:`(x, z_1, \dots, z_L)` of size :math:`n=n_0+N`, with

.. math::
    G_i = k_{aa}\,a_ia_i^\top + k_{ae}\,(a_ie_i^\top+e_ia_i^\top) + k_{ee}\,e_ie_i^\top,
    \qquad k_{aa}=-2\alpha\beta,\ k_{ae}=\alpha+\beta,\ k_{ee}=-2,

where :math:`a_i` is row :math:`i` of :math:`A=[\operatorname{blkdiag}(W_0,\dots,W_{L-1})\ 0]`
and :math:`e_i` the unit vector of hidden unit :math:`i`. Every :math:`G_i=V_iKV_i^\top` has
rank at most two, with :math:`V_i=[a_i\ e_i]`. :class:`LMIStructure` never forms :math:`A`
densely: it applies it block by block, so one product costs
:math:`O(n\sum_l n_ln_{l-1})`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["LMIStructure"]


@dataclass(frozen=True)
class LMIStructure:
    """The pieces of the LipSDP LMI for one network (weights already compressed and pruned).

    Attributes
    ----------
    weights : list of torch.Tensor
        ``W_0, ..., W_L`` in ``(out, in)`` order, float64, on one device.
    slopes : tuple of float
        ``(alpha, beta)``, the activation's slope bounds.
    groups : torch.Tensor
        Long tensor of shape ``(N,)``: the multiplier index of each hidden unit (its own index
        for LipSDP-Neuron, its layer for LipSDP-Layer).
    n_multipliers : int
        The number of free multipliers ``m`` (``N`` or ``L``).
    """

    weights: list[torch.Tensor]
    slopes: tuple[float, float]
    groups: torch.Tensor
    n_multipliers: int

    @cached_property
    def n_in(self) -> int:
        """Input size ``n_0``."""
        return self.weights[0].shape[1]

    @cached_property
    def sizes(self) -> list[int]:
        """Hidden sizes ``n_1, ..., n_L``."""
        return [w.shape[0] for w in self.weights[:-1]]

    @cached_property
    def n_hidden(self) -> int:
        """``N``, the number of hidden units."""
        return sum(self.sizes)

    @cached_property
    def dim(self) -> int:
        """``n = n_0 + N``, the side of the LMI."""
        return self.n_in + self.n_hidden

    @cached_property
    def k(self) -> tuple[float, float, float]:
        """``(k_aa, k_ae, k_ee)``, the entries of the 2x2 core ``K`` of every ``G_i``."""
        alpha, beta = self.slopes
        return -2.0 * alpha * beta, alpha + beta, -2.0

    @cached_property
    def _blocks(self) -> list[tuple[int, int]]:
        """Row ranges, in the LMI, of the input block and of each hidden layer."""
        bounds = [0, self.n_in]
        for size in self.sizes:
            bounds.append(bounds[-1] + size)
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    @cached_property
    def _row_starts(self) -> list[int]:
        """Where each hidden layer starts in the LMI (``n_0`` plus earlier layers)."""
        return [lo for lo, _ in self._blocks[1:]]

    def apply_a(self, y: torch.Tensor) -> torch.Tensor:
        """``A @ y`` for ``y`` of shape ``(n, k)``; returns shape ``(N, k)``."""
        blocks = self._blocks
        if len(blocks) == 2:
            return self.weights[0] @ y[: self.n_in]
        return torch.cat(
            [w @ y[lo:hi] for w, (lo, hi) in zip(self.weights[:-1], blocks, strict=False)]
        )

    def apply_at(self, u: torch.Tensor) -> torch.Tensor:
        """``A.T @ u`` for ``u`` of shape ``(N, k)``; returns shape ``(n, k)``."""
        out = u.new_zeros((self.dim, u.shape[1]))
        rows = self._blocks[1:]
        for w, (lo, hi), (rlo, rhi) in zip(self.weights[:-1], self._blocks, rows, strict=False):
            out[lo:hi] = w.T @ u[rlo - self.n_in : rhi - self.n_in]
        return out

    def expand(self, lam: torch.Tensor) -> torch.Tensor:
        """Per-unit multipliers (shape ``(N,)``) from the free ones (shape ``(m,)``)."""
        return lam[self.groups]

    def reduce(self, v: torch.Tensor) -> torch.Tensor:
        """Sum a per-unit vector (shape ``(N,)``) into the free multipliers (shape ``(m,)``)."""
        return v.new_zeros(self.n_multipliers).index_add_(0, self.groups, v)

    def reduce2(self, h: torch.Tensor) -> torch.Tensor:
        """``R.T @ h @ R`` for a per-unit matrix ``h`` (shape ``(N, N)``)."""
        if self.n_multipliers == self.n_hidden:
            return h
        rows = h.new_zeros((self.n_multipliers, h.shape[1])).index_add_(0, self.groups, h)
        return h.new_zeros((self.n_multipliers, self.n_multipliers)).index_add_(
            1, self.groups, rows
        )

    @cached_property
    def a_matrix(self) -> torch.Tensor:
        """``A`` as a dense ``(N, n)`` matrix (computed once)."""
        ref = self.weights[0]
        return self.apply_a(torch.eye(self.dim, dtype=ref.dtype, device=ref.device))

    @cached_property
    def constant(self) -> torch.Tensor:
        """``C``: ``W_L.T @ W_L`` on the last hidden block, zero elsewhere (computed once)."""
        w_last = self.weights[-1]
        c = w_last.new_zeros((self.dim, self.dim))
        c[-w_last.shape[1] :, -w_last.shape[1] :] = w_last.T @ w_last
        return c

    def g_of(self, lam: torch.Tensor) -> torch.Tensor:
        """``sum_i lam_i G_i`` for free multipliers ``lam`` (shape ``(m,)``)."""
        k_aa, k_ae, k_ee = self.k
        lam_bar = self.expand(lam)
        n0 = self.n_in
        a_dense = self.a_matrix
        if k_aa:
            g = self.apply_at(a_dense * (k_aa * lam_bar)[:, None])
        else:
            g = lam.new_zeros((self.dim, self.dim))
        cross = a_dense.T * (k_ae * lam_bar)[None, :]
        g[:, n0:] += cross
        g[n0:, :] += cross.T
        g[n0:, n0:] += torch.diag(k_ee * lam_bar)
        return g

    def trace_g(self, x: torch.Tensor) -> torch.Tensor:
        """``tr(G_k X)`` for every free multiplier ``k``, for a symmetric ``X``."""
        k_aa, k_ae, k_ee = self.k
        n0 = self.n_in
        ax = self.apply_a(x)
        hidden = torch.arange(self.n_hidden, device=x.device)
        quad = torch.cat(
            [
                (ax[r - n0 : r - n0 + w.shape[0], lo:hi] * w).sum(1)
                for w, (lo, hi), r in zip(
                    self.weights[:-1], self._blocks, self._row_starts, strict=False
                )
            ]
        )
        per_unit = k_aa * quad + 2.0 * k_ae * ax[hidden, n0 + hidden] + k_ee * x.diagonal()[n0:]
        return self.reduce(per_unit)

    def g_norms(self) -> torch.Tensor:
        """Frobenius norms of the free multipliers' matrices ``G_k`` (shape ``(m,)``)."""
        eye = torch.eye(self.dim, dtype=self.weights[0].dtype, device=self.weights[0].device)
        h = self.schur(eye, eye)  # H_kk = tr(G_k G_k) = ||G_k||_F^2 with X = Z = I
        return h.diagonal().clamp_min(0).sqrt()

    def gram_blocks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(A X A.T, A X B.T, B X B.T)`` for a symmetric ``X``: the blocks of ``V.T X V``."""
        n0 = self.n_in
        ax = self.apply_a(x)
        return self.apply_a(ax.T), ax[:, n0:], x[n0:, n0:]

    def schur(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``H_kl = tr(G_k X G_l Z)`` for symmetric ``X`` and ``Z`` (shape ``(m, m)``).

        With ``P = V.T X V`` and ``Q = V.T Z V`` split into 2x2 blocks of ``N x N`` matrices,
        ``H_ij = sum_qr P_qr[i, j] (K Q K)_qr[i, j]``: O(N^2) once the Gram blocks exist.
        """
        k_aa, k_ae, k_ee = self.k
        px_aa, px_ae, px_ee = self.gram_blocks(x)
        pz_aa, pz_ae, pz_ee = self.gram_blocks(z)
        pz_ea = pz_ae.T
        # (K Q K)_qr = sum_ps K_qp Q_ps K_sr, with K = [[k_aa, k_ae], [k_ae, k_ee]].
        w_aa = k_aa * (k_aa * pz_aa + k_ae * pz_ea) + k_ae * (k_aa * pz_ae + k_ae * pz_ee)
        w_ae = k_aa * (k_ae * pz_aa + k_ee * pz_ae) + k_ae * (k_ae * pz_ea + k_ee * pz_ee)
        w_ee = k_ae * (k_ae * pz_aa + k_ee * pz_ea) + k_ee * (k_ae * pz_ae + k_ee * pz_ee)
        h = px_aa * w_aa + px_ae * w_ae + px_ae.T * w_ae.T + px_ee * w_ee
        return self.reduce2(h)

    def cross_input(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``tr(G_k X E_0 Z)`` for every free multiplier ``k`` (``E_0``: input identity)."""
        k_aa, k_ae, k_ee = self.k
        n0 = self.n_in
        xa, za = x[:, :n0], z[:, :n0]  # X E_0 columns and (E_0 Z).T columns
        a_x, a_z = self.apply_a(xa), self.apply_a(za)
        e_x, e_z = xa[n0:], za[n0:]
        per_unit = (
            k_aa * (a_x * a_z).sum(1)
            + k_ae * ((a_x * e_z).sum(1) + (e_x * a_z).sum(1))
            + k_ee * (e_x * e_z).sum(1)
        )
        return self.reduce(per_unit)
