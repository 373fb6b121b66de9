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

__all__ = ["LMIStructure", "add_transposed"]

_TILE = 512  # rows and columns of a tile in add_transposed


def add_transposed(
    a: torch.Tensor, b: torch.Tensor, *, alpha: float = 1.0, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``a + alpha * b.T`` for square ``a`` and ``b`` (any strides), into a row-major ``out``.

    Tile by tile: a pass that reads a large matrix transposed touches one page per element, and
    at ``n = 2020`` (``4020``) it took 8x (14x) a plain addition on the development CPU; in
    512 x 512 tiles, 2.5x (3x). ``out`` (a new matrix by default) must not overlap ``a`` or ``b``.
    """
    n = a.shape[0]
    out = a.new_empty((n, n)) if out is None else out
    for i in range(0, n, _TILE):
        for j in range(0, n, _TILE):
            rows, cols = slice(i, i + _TILE), slice(j, j + _TILE)
            torch.add(a[rows, cols], b[cols, rows].T, alpha=alpha, out=out[rows, cols])
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

    @cached_property
    def _weights_t(self) -> list[torch.Tensor]:
        """``W_l^T`` stored row-major, for passes that would otherwise read ``W_l`` transposed."""
        return [w.T.contiguous() for w in self.weights[:-1]]

    def apply_a(self, y: torch.Tensor) -> torch.Tensor:
        """``A @ y`` for ``y`` of shape ``(n, k)``; returns shape ``(N, k)``."""
        out = y.new_empty((self.n_hidden, y.shape[1]))
        for w, (lo, hi), r in zip(self.weights[:-1], self._blocks, self._row_starts, strict=False):
            rows = r - self.n_in
            torch.mm(w, y[lo:hi], out=out[rows : rows + w.shape[0]])
        return out

    def apply_at(self, u: torch.Tensor) -> torch.Tensor:
        """``A.T @ u`` for ``u`` of shape ``(N, k)``; returns shape ``(n, k)``."""
        out = u.new_empty((self.dim, u.shape[1]))
        out[self._blocks[-1][0] :] = 0.0  # the last hidden layer: no column of A
        for w, (lo, hi), r in zip(self.weights[:-1], self._blocks, self._row_starts, strict=False):
            rows = r - self.n_in
            torch.mm(w.T, u[rows : rows + w.shape[0]], out=out[lo:hi])
        return out

    def gram(self, ay: torch.Tensor) -> torch.Tensor:
        """``A @ Y @ A.T`` for a symmetric ``Y`` from ``ay = A @ Y``; shape ``(N, N)``.

        Block by block: the diagonal block of layer ``l`` is ``(A Y)[l, in_l] W_l^T``; of the two
        blocks of layers ``i != j``, both go through the layer with the narrower input (``Y`` is
        symmetric, so ``(A Y A^T)_ij = W_i ((A Y)[j, in_i])^T``). For ``[n_0, h, h, 1]`` that is
        ``h^3`` multiply-adds instead of ``2 h^3`` for ``A @ (A @ Y).T``.
        """
        out = ay.new_empty((self.n_hidden, self.n_hidden))
        layers = []
        for w, (lo, hi), r in zip(self.weights[:-1], self._blocks, self._row_starts, strict=False):
            rows = slice(r - self.n_in, r - self.n_in + w.shape[0])
            layers.append((w, slice(lo, hi), rows))
        for i, (w_i, in_i, rows_i) in enumerate(layers):
            torch.mm(ay[rows_i, in_i], w_i.T, out=out[rows_i, rows_i])
            for w_j, in_j, rows_j in layers[i + 1 :]:
                w, cols, rows, other = (w_i, in_i, rows_i, rows_j)
                if in_j.stop - in_j.start < in_i.stop - in_i.start:
                    w, cols, rows, other = (w_j, in_j, rows_j, rows_i)
                torch.mm(ay[other, cols], w.T, out=out[other, rows])
                torch.mm(w, ay[other, cols].T, out=out[rows, other])
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

    def g_of(self, lam: torch.Tensor) -> torch.Tensor:
        """``sum_i lam_i G_i`` for free multipliers ``lam`` (shape ``(m,)``).

        Written block by block: only the blocks that ``A`` touches (``W_l^T D_l`` beside the
        diagonal, ``W_l^T D_l W_l`` on it when ``alpha beta != 0``) and the diagonal are
        nonzero, so the cost is one zero fill plus ``O(nnz(A))`` (plus one product per layer
        for the ``a_i a_i^T`` term).
        """
        k_aa, k_ae, k_ee = self.k
        lam_bar = self.expand(lam)
        g = lam.new_zeros((self.dim, self.dim))
        for w, (lo, hi), r in zip(self.weights[:-1], self._blocks, self._row_starts, strict=False):
            lam_l = lam_bar[r - self.n_in : r - self.n_in + w.shape[0]]
            cross = torch.mul(w.T, k_ae * lam_l, out=g[lo:hi, r : r + w.shape[0]])
            g[r : r + w.shape[0], lo:hi] = cross.T
            if k_aa:
                g[lo:hi, lo:hi].addmm_(w.T * lam_l, w, alpha=k_aa)
        g[self.n_in :, self.n_in :].diagonal().add_(k_ee * lam_bar)
        return g

    def trace_g(self, x: torch.Tensor) -> torch.Tensor:
        """``tr(G_k X)`` for every free multiplier ``k``, for any square ``X`` (symmetric or not).

        Only the blocks of ``X`` that ``A`` touches are read: ``O(nnz(A) + n)``, plus
        ``O(sum_l n_l n_{l-1}^2)`` for the ``a_i a_i^T`` term when ``alpha beta != 0``.
        """
        k_aa, k_ae, k_ee = self.k
        parts = []
        layers = zip(
            self.weights[:-1], self._weights_t, self._blocks, self._row_starts, strict=False
        )
        for w, w_t, (lo, hi), r in layers:
            rows = slice(r, r + w.shape[0])
            # a_i^T X e_i + e_i^T X a_i, with a_i = row i of W_l on the columns lo:hi (the second
            # as column sums, so that no operand is read transposed)
            per = k_ae * ((w * x[rows, lo:hi]).sum(1) + (w_t * x[lo:hi, rows]).sum(0))
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
        the per-unit multipliers: one :meth:`apply_at` and three or four passes over
        ``N x k``, no dense ``n x n`` product.
        """
        k_aa, k_ae, k_ee = self.k
        lam_bar = self.expand(lam)[:, None]
        bz = z[self.n_in :]
        inner = bz * (k_ae * lam_bar)
        if k_aa:
            inner.addcmul_(az, lam_bar, value=k_aa)
        out = self.apply_at(inner)
        out[self.n_in :].addcmul_(az, lam_bar, value=k_ae).addcmul_(bz, lam_bar, value=k_ee)
        return out

    @cached_property
    def constant(self) -> torch.Tensor:
        """``C``: ``W_L.T @ W_L`` on the last hidden block, zero elsewhere (dense, computed once;
        the solver uses the structured methods below)."""
        c = self._constant_block.new_zeros((self.dim, self.dim))
        c[self._last, self._last] = self._constant_block
        return c

    @cached_property
    def _last(self) -> slice:
        """The rows of the last hidden layer, the only ones ``C`` touches."""
        return slice(self.dim - self.weights[-1].shape[1], self.dim)

    @cached_property
    def _constant_block(self) -> torch.Tensor:
        """``W_L.T @ W_L``, the nonzero block of ``C``."""
        return self.weights[-1].T @ self.weights[-1]

    @cached_property
    def constant_norm(self) -> float:
        """``||C||_F``."""
        return float(torch.linalg.matrix_norm(self._constant_block))

    def add_constant(self, out: torch.Tensor, scale: float) -> torch.Tensor:
        """``out += scale * C`` in place (one ``n_L x n_L`` block); returns ``out``."""
        if scale:
            out[self._last, self._last].add_(self._constant_block, alpha=scale)
        return out

    def add_constant_times(self, out: torch.Tensor, z: torch.Tensor, scale: float) -> torch.Tensor:
        """``out += scale * C @ Z`` in place, in ``O(n_L n_out k)``; returns ``out``."""
        if scale:
            w_last = self.weights[-1]
            out[self._last].addmm_(w_last.T, w_last @ z[self._last], alpha=scale)
        return out

    def constant_factor_times(self, x: torch.Tensor) -> torch.Tensor:
        """``X @ U`` for the factor ``U`` of ``C = U U^T`` (``U = W_L^T`` on the last hidden
        block), shape ``(n, n_out)``: ``tr(C X) = <U, X U>`` and ``C`` is low-rank."""
        return x[:, self._last] @ self.weights[-1].T

    def trace_constant(self, x: torch.Tensor) -> float:
        """``tr(C X)`` for any square ``X``, from its last hidden block only."""
        return float((self._constant_block * x[self._last, self._last]).sum())

    def schur(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        *,
        ax: torch.Tensor | None = None,
        az: torch.Tensor | None = None,
        azat: torch.Tensor | None = None,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``H_kl = tr(G_k X G_l Z)`` for symmetric ``X`` and ``Z`` (shape ``(m, m)``).

        With ``P = V.T X V`` and ``Q = V.T Z V`` split into 2x2 blocks of ``N x N`` matrices,
        ``H_ij = sum_qr P_qr[i, j] (K Q K)_qr[i, j]``: O(N^2) once the Gram blocks exist.
        ``ax = A @ X``, ``az = A @ Z`` and ``azat = A @ Z @ A.T`` may be passed when already
        computed; ``out`` (shape ``(m, m)``, may be a view) receives the result.

        The sum is regrouped as ``N_1 + V + V^T`` with ``N_1`` the terms in the symmetric blocks
        ``P_aa, P_ee, Q_aa, Q_ee`` and ``V`` the rest (``P_ee Q_ea = (P_ee Q_ae)^T`` and so on):
        these ``N x N`` passes are memory-bound, and a pass that reads a transposed block costs
        several contiguous ones, so only two do (``Q_ea`` once, ``V^T`` once). Scaled by
        ``k_ae k_ee`` (never zero) until the last pass; zero terms (``alpha = 0``) are skipped.
        """
        k_aa, k_ae, k_ee = self.k
        c, r = k_ae * k_ee, k_ae / k_ee
        n0 = self.n_in
        ax = self.apply_a(x) if ax is None else ax
        az = self.apply_a(z) if az is None else az
        q_aa = self.gram(az) if azat is None else azat
        p_aa = self.gram(ax)
        q_ae, q_ee = az[:, n0:], z[n0:, n0:]
        p_ae, p_ee = ax[:, n0:], x[n0:, n0:]
        # (K Q K)_ae / c = Q_ee + (k_ae^2 / c) Q_ea + ...; row-major outputs throughout (torch
        # lays a result out like a transposed input, which makes every later pass strided)
        v = add_transposed(q_ee, q_ae, alpha=r)
        if k_aa:
            v.add_(q_aa, alpha=k_aa / k_ee).add_(q_ae, alpha=k_aa / k_ae)
        v.mul_(p_ae).addcmul_(p_ee, q_ae)
        if k_aa:
            v.addcmul_(p_aa, q_ae, value=k_aa / k_ee)
        direct = self.n_multipliers == self.n_hidden and out is not None
        h = add_transposed(v, v, out=out if direct else None)
        w_aa = q_ee if not k_aa else torch.add(q_ee, q_aa, alpha=(k_aa / k_ae) ** 2)
        h.addcmul_(p_aa, w_aa, value=r)
        h.addcmul_(p_ee, torch.add(q_aa, q_ee, alpha=1.0 / r**2), value=r)
        h.mul_(c)
        if direct:
            return h
        h = self.reduce2(h)
        return h if out is None else out.copy_(h)

    def trace_g_lowrank(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``tr(G_k P Q^T)`` for every free multiplier ``k``, for ``P``, ``Q`` of shape ``(n, r)``.

        With ``G_i = V_i K V_i^T``, each term is ``sum K_uv (u^T P) . (v^T Q)`` over ``u, v`` in
        ``{a_i, e_i}``: two thin :meth:`apply_a` and row-wise dot products, ``O(nnz(A) r)``.
        ``tr(G_k X E_0 Z)`` is the case ``P = X E_0``, ``Q = Z E_0`` (the input columns).
        """
        k_aa, k_ae, k_ee = self.k
        n0 = self.n_in
        a_p, a_q = self.apply_a(p), self.apply_a(q)
        e_p, e_q = p[n0:], q[n0:]
        per_unit = (
            k_aa * (a_p * a_q).sum(1)
            + k_ae * ((a_p * e_q).sum(1) + (e_p * a_q).sum(1))
            + k_ee * (e_p * e_q).sum(1)
        )
        return self.reduce(per_unit)
