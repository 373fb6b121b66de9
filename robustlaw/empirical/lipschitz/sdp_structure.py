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


def _combo(*terms: tuple[float, torch.Tensor]) -> torch.Tensor:
    """``sum_i c_i M_i`` over the terms with ``c_i != 0`` (at least one), fused where possible."""
    terms = tuple((c, m) for c, m in terms if c)
    out = terms[0][0] * terms[0][1]
    for c, m in terms[1:]:
        out.add_(m, alpha=c)
    return out


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
        g[n0:, n0:].diagonal().add_(k_ee * lam_bar)
        return g

    def trace_g(self, x: torch.Tensor) -> torch.Tensor:
        """``tr(G_k X)`` for every free multiplier ``k``, for any square ``X`` (symmetric or not).

        Only the blocks of ``X`` that ``A`` touches are read: ``O(nnz(A) + n)``, plus
        ``O(sum_l n_l n_{l-1}^2)`` for the ``a_i a_i^T`` term when ``alpha beta != 0``.
        """
        k_aa, k_ae, k_ee = self.k
        parts = []
        for w, (lo, hi), r in zip(self.weights[:-1], self._blocks, self._row_starts, strict=False):
            rows = slice(r, r + w.shape[0])
            # a_i^T X e_i + e_i^T X a_i, with a_i = row i of W_l on the columns lo:hi
            per = k_ae * ((w * x[rows, lo:hi]).sum(1) + (w * x[lo:hi, rows].T).sum(1))
            if k_aa:
                per = per + k_aa * ((w @ x[lo:hi, lo:hi]) * w).sum(1)
            parts.append(per)
        per_unit = torch.cat(parts) + k_ee * x.diagonal()[self.n_in :]
        return self.reduce(per_unit)

    def trace_g_product(
        self, x: torch.Tensor, ax: torch.Tensor, y: torch.Tensor, ay_t: torch.Tensor
    ) -> torch.Tensor:
        """``tr(G_k X Y)`` for every free multiplier ``k``, without forming ``X @ Y``.

        ``ax = A @ X`` and ``ay_t = A @ Y.T``; with ``a_k`` row ``k`` of ``A`` and ``e_k`` its
        unit vector, each ``u^T X Y v`` (``u, v`` in ``{a_k, e_k}``) is a row-wise dot product,
        ``O(nN)`` in all.
        """
        k_aa, k_ae, k_ee = self.k
        n0 = self.n_in
        x_e, y_e = x[n0:], y[:, n0:].T  # rows e_k^T X and columns Y e_k (as rows)
        per_unit = k_ae * ((ax * y_e).sum(1) + (x_e * ay_t).sum(1)) + k_ee * (x_e * y_e).sum(1)
        if k_aa:
            per_unit = per_unit + k_aa * (ax * ay_t).sum(1)
        return self.reduce(per_unit)

    def g_times(self, lam: torch.Tensor, z: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
        """``(sum_i lam_i G_i) @ Z`` for free multipliers ``lam`` and ``az = A @ Z``.

        ``G = A^T D (k_aa A Z + k_ae B Z) + B^T D (k_ae A Z + k_ee B Z)`` with ``D``
        the per-unit multipliers: one :meth:`apply_at`, no dense ``n x n`` product.
        """
        k_aa, k_ae, k_ee = self.k
        lam_bar = self.expand(lam)[:, None]
        bz = z[self.n_in :]
        inner = k_ae * bz if not k_aa else k_aa * az + k_ae * bz
        out = self.apply_at(lam_bar * inner)
        out[self.n_in :] += lam_bar * (k_ae * az + k_ee * bz)
        return out

    def constant_times(self, z: torch.Tensor) -> torch.Tensor:
        """``C @ Z`` (``C``: ``W_L^T W_L`` on the last hidden block), in ``O(n_L n_out n)``."""
        w_last = self.weights[-1]
        out = torch.zeros_like(z)
        out[-w_last.shape[1] :] = w_last.T @ (w_last @ z[-w_last.shape[1] :])
        return out

    def schur(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        *,
        ax: torch.Tensor | None = None,
        az: torch.Tensor | None = None,
        azat: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``H_kl = tr(G_k X G_l Z)`` for symmetric ``X`` and ``Z`` (shape ``(m, m)``).

        With ``P = V.T X V`` and ``Q = V.T Z V`` split into 2x2 blocks of ``N x N`` matrices,
        ``H_ij = sum_qr P_qr[i, j] (K Q K)_qr[i, j]``: O(N^2) once the Gram blocks exist.
        ``ax = A @ X``, ``az = A @ Z`` and ``azat = A @ Z @ A.T`` may be passed when already
        computed.
        """
        k_aa, k_ae, k_ee = self.k
        n0 = self.n_in
        ax = self.apply_a(x) if ax is None else ax
        az = self.apply_a(z) if az is None else az
        pz_aa = self.apply_a(az.T) if azat is None else azat
        pz_ae, pz_ee = az[:, n0:], z[n0:, n0:]
        px_ae, px_ee = ax[:, n0:], x[n0:, n0:]
        pz_ea, pz_sym = pz_ae.T, pz_ae + pz_ae.T
        # (K Q K)_qr = sum_ps K_qp Q_ps K_sr, with K = [[k_aa, k_ae], [k_ae, k_ee]]; zero
        # coefficients (alpha = 0) are skipped: these N x N passes are memory-bound.
        w_ae = _combo(
            (k_aa * k_ae, pz_aa), (k_aa * k_ee, pz_ae), (k_ae**2, pz_ea), (k_ae * k_ee, pz_ee)
        )
        w_ee = _combo((k_ae**2, pz_aa), (k_ae * k_ee, pz_sym), (k_ee**2, pz_ee))
        w_aa = _combo((k_aa**2, pz_aa), (k_aa * k_ae, pz_sym), (k_ae**2, pz_ee))
        h = px_ae * w_ae
        h += h.T.clone()
        h += self.apply_a(ax.T) * w_aa
        h.addcmul_(px_ee, w_ee)
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
