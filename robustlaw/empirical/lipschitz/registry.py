"""One entry point for every Lipschitz method: a registry and :func:`estimate_lipschitz`.

A method is a registered frozen record: its function, its options dataclass (whose fields are
the function's keyword arguments), and flags. Sweeps call :func:`estimate_lipschitz` with
``raise_on_failure=False`` so that a failed solve becomes a recorded ``FAILED`` status instead
of a crash; the CLI passes ``True``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw._validation import check_choice, get_registered
from robustlaw.empirical.lipschitz.compositional import eclipse
from robustlaw.empirical.lipschitz.lipsdp import lipsdp
from robustlaw.empirical.lipschitz.lower import GradientOptions, gradient_lower_bound
from robustlaw.empirical.lipschitz.result import EstimateStatus, LipschitzEstimate
from robustlaw.empirical.lipschitz.slopes import slope_bounds
from robustlaw.empirical.lipschitz.spectral import SpectralOptions, spectral_product
from robustlaw.empirical.lipschitz.weights import as_network
from robustlaw.errors import SolverError, ValidationError

__all__ = [
    "LIPSCHITZ_METHODS",
    "EclipseOptions",
    "LipSDPMethodOptions",
    "LipschitzMethod",
    "estimate_lipschitz",
]

# worst last: the status of an ensemble is the worst of its members'
_SEVERITY = list(EstimateStatus)


@dataclass(frozen=True, kw_only=True)
class EclipseOptions:
    """Options of :func:`~robustlaw.empirical.lipschitz.compositional.eclipse`.

    Parameters
    ----------
    fast : bool
        The closed form ECLipsE-Fast (default) or ECLipsE's per-layer SDPs.
    activation : str or (alpha, beta), optional
        Slope bounds; by default the network's own activation.
    solver : str
        For ``fast=False``: ``"torch"`` (batched descent) or a cvxpy solver name.
    max_iter : int
        Descent steps per layer (``fast=False``, ``solver="torch"``).
    """

    fast: bool = True
    activation: str | tuple[float, float] | None = None
    solver: str = "torch"
    max_iter: int = 100

    def __post_init__(self) -> None:
        if self.activation is not None:
            slope_bounds(self.activation)


@dataclass(frozen=True, kw_only=True)
class LipSDPMethodOptions:
    """Options of :func:`~robustlaw.empirical.lipschitz.lipsdp.lipsdp` (same keywords).

    ``None`` means that function's documented default.
    """

    variant: str = "neuron"
    activation: str | tuple[float, float] | None = None
    backend: str = "auto"
    solver: str | None = None
    tol: float | None = None
    max_iter: int | None = None

    def __post_init__(self) -> None:
        check_choice(self.variant, "variant", ("neuron", "layer"))
        check_choice(self.backend, "backend", ("auto", "fast", "cvxpy"))
        if self.activation is not None:
            slope_bounds(self.activation)


@dataclass(frozen=True, kw_only=True)
class LipschitzMethod:
    """A registered Lipschitz method.

    Attributes
    ----------
    function : callable
        ``function(net, **options_fields)`` returning a :class:`LipschitzEstimate`.
    options : type
        The frozen options dataclass.
    kind : {"lower", "upper"}
        What its values are.
    needs_data : bool
        Takes points ``X`` (drawn at random when absent).
    batched : bool
        Handles a stack of members in one call (otherwise members are solved one by one).
    takes_generator : bool
        Accepts ``generator=``.
    takes_activation : bool
        Has an ``activation`` option that defaults to the network's own.
    """

    function: Callable[..., LipschitzEstimate]
    options: type
    kind: str
    needs_data: bool = False
    batched: bool = True
    takes_generator: bool = False
    takes_activation: bool = False


#: name -> :class:`LipschitzMethod`. ``lipsdp`` solves members one at a time.
LIPSCHITZ_METHODS: dict[str, LipschitzMethod] = {
    "gradient": LipschitzMethod(
        function=gradient_lower_bound,
        options=GradientOptions,
        kind="lower",
        needs_data=True,
        takes_generator=True,
    ),
    "spectral": LipschitzMethod(
        function=spectral_product, options=SpectralOptions, kind="upper", takes_generator=True
    ),
    "eclipse": LipschitzMethod(
        function=eclipse, options=EclipseOptions, kind="upper", takes_activation=True
    ),
    "lipsdp": LipschitzMethod(
        function=lipsdp,
        options=LipSDPMethodOptions,
        kind="upper",
        batched=False,
        takes_activation=True,
    ),
}


def _failed(method: str, kind: str, n_members: int, batched: bool, err: Exception, start: float):
    value = np.full(n_members, np.nan) if batched else float("nan")
    return LipschitzEstimate(
        value=value,
        kind=kind,
        method=method,
        status=EstimateStatus.FAILED,
        certified=False,
        seconds=time.perf_counter() - start,
        details={"error": f"{type(err).__name__}: {err}"},
    )


def _stack(estimates: list[LipschitzEstimate], seconds: float) -> LipschitzEstimate:
    """Combine one estimate per member into one batched estimate."""
    first = estimates[0]
    return LipschitzEstimate(
        value=np.array([e.value for e in estimates], dtype=np.float64),
        kind=first.kind,
        method=first.method,
        status=max((e.status for e in estimates), key=_SEVERITY.index),
        certified=all(e.certified for e in estimates),
        seconds=seconds,
        n_iter=max(e.n_iter for e in estimates),
        solver=first.solver,
        details={"members": [e.details for e in estimates]},
    )


def estimate_lipschitz(
    net,
    method: str,
    options=None,
    *,
    X=None,
    generator: torch.Generator | None = None,
    raise_on_failure: bool = False,
) -> LipschitzEstimate:
    """Run a registered Lipschitz method on a network or on every member of an ensemble.

    Parameters
    ----------
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`.
    method : str
        A key of :data:`LIPSCHITZ_METHODS`.
    options : dataclass, optional
        The method's options (``LIPSCHITZ_METHODS[method].options``); defaults when omitted.
    X : array_like, optional
        Points for methods that need data (ignored by the others).
    generator : torch.Generator, optional
        For randomized methods.
    raise_on_failure : bool
        Raise :class:`SolverError` on a failed or uncertified result, instead of returning it
        with its status (``FAILED`` carries NaN and ``details["error"]``).

    Returns
    -------
    LipschitzEstimate

    Raises
    ------
    UnknownNameError
        For an unknown method (the message lists the valid names).
    ValidationError
        For bad weights or options of the wrong type (always raised: misuse is not a status).

    Examples
    --------
    >>> import numpy as np
    >>> est = estimate_lipschitz([np.array([[3.0, 4.0]])], "spectral")
    >>> round(est.value, 9), est.kind
    (5.0, 'upper')
    """
    entry = get_registered(LIPSCHITZ_METHODS, method, "Lipschitz method")
    options = entry.options() if options is None else options
    if not isinstance(options, entry.options):
        raise ValidationError(
            f"options for {method!r} must be {entry.options.__name__}, got {type(options).__name__}"
        )
    start = time.perf_counter()
    network = as_network(net)
    kwargs = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    if entry.needs_data:
        kwargs["X"] = X
    if entry.takes_generator:
        kwargs["generator"] = generator
    if entry.takes_activation and kwargs["activation"] is None:
        kwargs["activation"] = network.activation
    try:
        if entry.batched:
            est = entry.function(net if entry.needs_data else network.weights, **kwargs)
            if not network.batched and est.batched:
                est = dataclasses.replace(est, value=float(est.value[0]))
        else:
            members = [
                entry.function([w[k] for w in network.weights], **kwargs)
                for k in range(network.n_members)
            ]
            est = (
                members[0] if not network.batched else _stack(members, time.perf_counter() - start)
            )
    except SolverError as err:
        if raise_on_failure:
            raise
        return _failed(method, entry.kind, network.n_members, network.batched, err, start)
    if raise_on_failure:
        est.raise_for_status()
    return est
