"""Compiled sparse kernels for masked MLP layers: products that skip the pruned weights.

A masked layer of K stacked members keeps a fraction ``rho`` of its weights. The dense path
multiplies full ``(out, in)`` matrices and throws the pruned products away; here each member's
kept weights are stored compressed (row-compressed, in the order of the mask's non-zeros) and
the three products of a training step touch only them (Gale, Zaharia, Young and Elsen,
*Sparse GPU Kernels for Deep Learning*, SC 2020, use the same three products on the GPU):

- forward, ``y = W x``: one axpy of length B per kept weight (SpMM);
- input gradient, ``dx = W^T dy``: the same kernel on the transposed structure (SpMM);
- weight gradient, ``dW = (dy x^T) restricted to the mask``: one dot product of length B per
  kept weight (SDDMM, sampled dense-dense product).

Activations are unit-major, ``(K, units, B)``, so each axpy and each dot product runs over B
contiguous numbers; ReLU is applied as the forward stores its output and its derivative as the
backward stores the input gradient, so it costs no pass of its own. The kernels are plain C
(``_sparse_kernels.c`` beside this module), compiled with the system's C compiler on first use
(about a second) into a cache directory and loaded with :mod:`ctypes`. Members are split over
``torch.get_num_threads()`` OpenMP threads: the library asks for ``libgomp.so.1``, which
torch's CPU build has already loaded, so the kernels run in torch's own thread pool (two pools
would spin against each other). Without OpenMP the kernels run on one thread; where no
compiler works, :func:`kernels` returns None and training takes the dense path.

The cache directory is ``$ROBUSTLAW_CACHE_DIR``, else ``$XDG_CACHE_HOME/robustlaw``, else
``~/.cache/robustlaw``; the library's name hashes the source, the compiler, its flags and the
CPU, so a change to any of them compiles afresh.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from robustlaw.empirical.ensemble import ACTIVATIONS

__all__ = [
    "ACTIVATION_GRADS",
    "FLAGS",
    "SPARSE_DENSITY_LIMIT",
    "KernelLayer",
    "kernels",
    "kernels_unavailable_reason",
    "library_path",
    "sparse_mlp",
]

logger = logging.getLogger(__name__)

#: ``TrainOptions(kernels="auto")`` trains a masked MLP ensemble on these kernels when at most
#: this fraction of its weights is kept: below it a training step is faster than on the dense
#: path (measured in ``benchmarks/bench_training.py``, ``docs/benchmarks/training.md``).
SPARSE_DENSITY_LIMIT = 0.5

SOURCE = Path(__file__).with_name("_sparse_kernels.c")
#: The compiler flags tried in turn; the first set that compiles is used.
FLAGS = (("-O3", "-march=native", "-fopenmp"), ("-O3", "-fopenmp"), ("-O3",))
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_SPMM_ARGS = [_I64] * 5 + [_PTR] * 5 + [_I64] * 2 + [_PTR] * 3
_SDDMM_ARGS = [_I64] * 5 + [_PTR] * 5 + [_I64] + [_PTR] * 2


def _cache_dir() -> Path:
    if os.environ.get("ROBUSTLAW_CACHE_DIR"):
        return Path(os.environ["ROBUSTLAW_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "robustlaw"


def _compiler() -> str | None:
    name = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(name) or shutil.which("cc")


def _cpu_tag() -> str:
    """The CPU's feature flags where Linux lists them (``-march=native`` depends on them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line for line in lines if line.startswith(("flags", "Features"))), "")


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> None:
    """Compile :data:`SOURCE` into ``target`` atomically (a half-written file is never seen)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(fd)
    try:
        cmd = [compiler, *flags, "-std=gnu11", "-shared", "-fPIC", str(SOURCE), "-o", tmp]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for suffix in _SUFFIX.values():
        getattr(lib, f"spmm_{suffix}").argtypes = _SPMM_ARGS
        getattr(lib, f"sddmm_{suffix}").argtypes = _SDDMM_ARGS
    return lib


def library_path(compiler: str, flags: tuple[str, ...]) -> Path:
    """Where the kernels compiled by ``compiler`` with ``flags`` are cached."""
    key = "\0".join([SOURCE.read_text(), compiler, *flags, platform.machine(), _cpu_tag()])
    return _cache_dir() / f"sparse_kernels-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


@functools.cache
def _build() -> tuple[ctypes.CDLL | None, str]:
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler found (set CC)"
    errors = []
    for flags in FLAGS:
        path = library_path(compiler, flags)
        try:
            if not path.exists():
                _compile(compiler, flags, path)
            try:
                return _load(path), ""
            except OSError:  # a damaged cached library: compile it afresh, once
                _compile(compiler, flags, path)
                return _load(path), ""
        except (OSError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", b"") or b""
            errors.append(f"{' '.join(flags)}: {err} {detail.decode(errors='replace')[:200]}")
    return None, "compiling the sparse kernels failed: " + "; ".join(errors)


def kernels() -> ctypes.CDLL | None:
    """The compiled kernels, compiled on the first call; None where no compiler works."""
    lib, reason = _build()
    if lib is None:
        logger.info("sparse kernels unavailable, training uses dense products: %s", reason)
    return lib


def kernels_unavailable_reason() -> str:
    """Why :func:`kernels` is None (empty when they are available)."""
    return _build()[1]


def _run(function, n_members: int, *args) -> None:
    """``function`` over all members, on torch's number of threads (OpenMP inside)."""
    function(n_members, torch.get_num_threads(), *args)


def _ptr(t: torch.Tensor | None):
    return None if t is None else t.data_ptr()


@dataclass(frozen=True, eq=False)
class KernelLayer:
    """One masked layer of K members as the kernels index it.

    Attributes
    ----------
    shape : tuple of int
        ``(K, out, in)``, the dense weights' shape.
    capacity : int
        ``P``, the most weights any member keeps: member k's kept weights occupy
        ``values[k, :count_k]`` of the compressed ``(K, P)`` values, row by row, and the rest
        of its row is zero padding.
    row_ptr, row_idx, entry_row : torch.Tensor
        Row-compressed structure: ``(K, out + 1)`` int64 offsets into the member's values,
        ``(K * P,)`` int32 input unit and ``(K * P,)`` int32 output unit of each entry.
    col_ptr, col_row, col_value : torch.Tensor
        The transposed structure: ``(K, in + 1)`` offsets, ``(K * P,)`` int32 output unit and
        ``(K * P,)`` int64 position in the flat values of each entry.
    flat_index, value_index : torch.Tensor
        Each kept weight's position in the flat dense ``(K * out * in,)`` weights and in the
        flat ``(K * P,)`` values.
    """

    shape: tuple[int, int, int]
    capacity: int
    row_ptr: torch.Tensor
    row_idx: torch.Tensor
    entry_row: torch.Tensor
    col_ptr: torch.Tensor
    col_row: torch.Tensor
    col_value: torch.Tensor
    flat_index: torch.Tensor
    value_index: torch.Tensor

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> KernelLayer:
        """The structure of a boolean ``(K, out, in)`` mask (on the CPU)."""
        k_members, n_out, n_in = mask.shape
        row_ptr = _offsets(mask.sum(dim=2))
        counts = row_ptr[:, -1]  # kept weights per member
        capacity = int(counts.max()) if k_members else 0
        first = torch.cumsum(counts, 0) - counts  # each member's first entry, unpadded
        member, row, col = mask.nonzero(as_tuple=True)  # row-major: by member, row, column
        rank = torch.arange(member.numel()) - first[member]
        value_index = member * capacity + rank
        row_idx = torch.zeros(k_members * capacity, dtype=torch.int32)
        row_idx[value_index] = col.to(torch.int32)
        entry_row = torch.zeros(k_members * capacity, dtype=torch.int32)
        entry_row[value_index] = row.to(torch.int32)
        by_column = torch.argsort((member * n_in + col) * n_out + row)  # by member, col, row
        t_index = member[by_column] * capacity + rank  # a member's entries stay in its range
        col_row = torch.zeros(k_members * capacity, dtype=torch.int32)
        col_row[t_index] = row[by_column].to(torch.int32)
        col_value = torch.zeros(k_members * capacity, dtype=torch.int64)
        col_value[t_index] = value_index[by_column]
        return cls(
            shape=(k_members, n_out, n_in),
            capacity=capacity,
            row_ptr=row_ptr,
            row_idx=row_idx,
            entry_row=entry_row,
            col_ptr=_offsets(mask.sum(dim=1)),
            col_row=col_row,
            col_value=col_value,
            flat_index=(member * n_out + row) * n_in + col,
            value_index=value_index,
        )

    def compress(self, dense: torch.Tensor) -> torch.Tensor:
        """The kept entries of ``(K, out, in)`` weights as ``(K, P)`` values (padding zero)."""
        values = dense.new_zeros(self.shape[0] * self.capacity)
        values[self.value_index] = dense.reshape(-1)[self.flat_index]
        return values.reshape(self.shape[0], self.capacity)

    def expand(self, values: torch.Tensor) -> torch.Tensor:
        """Dense ``(K, out, in)`` weights, zero at pruned entries, from ``(K, P)`` values."""
        dense = values.new_zeros(self.shape[0] * self.shape[1] * self.shape[2])
        dense = dense.index_put((self.flat_index,), values.reshape(-1)[self.value_index])
        return dense.reshape(self.shape)


def _offsets(counts: torch.Tensor) -> torch.Tensor:
    """``(K, n + 1)`` running offsets of per-row counts ``(K, n)``."""
    out = torch.zeros(counts.shape[0], counts.shape[1] + 1, dtype=torch.int64)
    out[:, 1:] = torch.cumsum(counts, 1)
    return out.contiguous()


def _stride(src: torch.Tensor) -> int:
    """Elements between members of unit-major ``src`` (0 when shared)."""
    return 0 if src.ndim == 2 else src.shape[1] * src.shape[2]


def _spmm(values, layer: KernelLayer, src, *, relu=False, bias=None, gate=None, transposed=False):
    """``W src + bias`` (ReLU applied if ``relu``) or ``W^T src`` (zeroed where ``gate <= 0``)
    for unit-major ``src``: ``(K, units, B)`` or shared ``(units, B)``."""
    k_members, n_out, n_in = layer.shape
    rows = n_in if transposed else n_out
    dst = values.new_empty(k_members, rows, src.shape[-1])
    ptr, idx, vpos = (
        (layer.col_ptr, layer.col_row, layer.col_value)
        if transposed
        else (layer.row_ptr, layer.row_idx, None)
    )
    function = getattr(kernels(), f"spmm_{_SUFFIX[values.dtype]}")
    args = (rows, src.shape[-1], layer.capacity, _ptr(ptr), _ptr(idx), _ptr(vpos), _ptr(values))
    tail = (_ptr(src), _stride(src), int(relu), _ptr(bias), _ptr(gate), _ptr(dst))
    _run(function, k_members, *args, *tail)
    return dst


def _sddmm(layer: KernelLayer, grad_out, src, with_bias: bool):
    """``grad_out src^T`` at the kept entries, as ``(K, P)`` values (padding zero), and the
    bias gradient ``grad_out.sum(2)`` if ``with_bias`` (else None)."""
    k_members, n_out, _ = layer.shape
    grad = grad_out.new_empty(k_members, layer.capacity)
    bias_grad = grad_out.new_empty(k_members, n_out) if with_bias else None
    function = getattr(kernels(), f"sddmm_{_SUFFIX[grad_out.dtype]}")
    args = (n_out, src.shape[-1], layer.capacity, _ptr(layer.row_ptr), _ptr(layer.row_idx))
    args += (_ptr(layer.entry_row),)
    tail = (_ptr(grad_out), _ptr(src), _stride(src), _ptr(grad), _ptr(bias_grad))
    _run(function, k_members, *args, *tail)
    return grad, bias_grad


#: Hidden activations with their derivative as a function of the output ``h`` (``None``:
#: computed inside the kernels, ReLU at the forward store and as the backward's gate).
ACTIVATION_GRADS = {
    "relu": None,
    "identity": None,
    "tanh": lambda h, g: g * (1 - h * h),
    "sigmoid": lambda h, g: g * h * (1 - h),
}


class _SparseMLP(torch.autograd.Function):
    """A whole masked MLP on compressed weights and unit-major activations, first-order."""

    @staticmethod
    def forward(ctx, x, activation, layers, *params):
        values, biases = params[0::2], params[1::2]
        act = ACTIVATIONS[activation] if ACTIVATION_GRADS[activation] else None
        keep = any(ctx.needs_input_grad)  # else (a no-grad pass) free each layer's input
        inputs, h = [x], x
        for l, layer in enumerate(layers):
            hidden = l < len(layers) - 1
            h = _spmm(values[l], layer, h, relu=hidden and activation == "relu", bias=biases[l])
            if hidden:
                h = act(h) if act else h
                if keep:
                    inputs.append(h)
        ctx.activation, ctx.layers = activation, layers
        ctx.has_bias = [b is not None for b in biases]
        ctx.save_for_backward(*values, *inputs)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        layers, activation = ctx.layers, ctx.activation
        values, inputs = ctx.saved_tensors[: len(layers)], ctx.saved_tensors[len(layers) :]
        grads = [None] * (2 * len(layers))
        g, grad_x = grad_out.contiguous(), None
        for l in reversed(range(len(layers))):
            x = inputs[l]
            grads[2 * l], grads[2 * l + 1] = _sddmm(layers[l], g, x, ctx.has_bias[l])
            if l > 0:
                gate = x if activation == "relu" else None  # ReLU' > 0 exactly where h > 0
                g = _spmm(values[l], layers[l], g, gate=gate, transposed=True)
                derivative = ACTIVATION_GRADS[activation]
                g = derivative(x, g) if derivative else g
            elif ctx.needs_input_grad[0]:
                grad_x = _spmm(values[0], layers[0], g, transposed=True)
                grad_x = grad_x.sum(dim=0) if x.ndim == 2 else grad_x
        return grad_x, None, None, *grads


def sparse_mlp(
    x: torch.Tensor,
    values: list[torch.Tensor],
    biases: list[torch.Tensor | None],
    layers: list[KernelLayer],
    activation: str,
) -> torch.Tensor:
    """A masked MLP ensemble on compressed weights and unit-major activations, with autograd.

    Parameters
    ----------
    x : torch.Tensor
        Unit-major inputs ``(K, d, B)``, or ``(d, B)`` shared by every member, contiguous,
        float32 or float64 on the CPU.
    values : list of torch.Tensor
        Per layer, the ``(K, P)`` compressed weights (``layer.compress`` of the dense ones),
        contiguous, the dtype of ``x``.
    biases : list of torch.Tensor or None
        Per layer, ``(K, out)`` contiguous biases, or None.
    layers : list of KernelLayer
        Per layer, the mask's structure.
    activation : str
        The hidden activation, a key of :data:`ACTIVATION_GRADS` (ReLU runs inside the
        kernels: it costs no pass of its own, forward or backward).

    Returns
    -------
    torch.Tensor
        The outputs ``(K, n_outputs, B)``, differentiable once (no second derivatives) in
        ``x``, ``values`` and ``biases``. Needs :func:`kernels` to be available.
    """
    params = [t for pair in zip(values, biases, strict=True) for t in pair]
    return _SparseMLP.apply(x, activation, layers, *params)
