"""One entry point for every Lipschitz method: a registry and :func:`estimate_lipschitz`.

Every registered method has one signature,
``method(net, options, *, X=None, generator=None) -> LipschitzEstimate``: ``net`` is anything
:func:`~robustlaw.empirical.lipschitz.weights.as_network` accepts (an ensemble gives one value
per member), ``options`` an instance of the method's frozen options dataclass (None for its
defaults), ``X`` data points and ``generator`` a source of randomness; methods that need no
data or randomness ignore those two. A registry entry is just (function, options class, kind).

Sweeps call :func:`estimate_lipschitz` with ``raise_on_failure=False`` so that a failed solve
becomes a recorded ``FAILED`` status instead of a crash; the CLI passes ``True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw._validation import check_choice, get_registered
from robustlaw.empirical.lipschitz.compositional import (
    EclipseFastOptions,
    EclipseOptions,
    eclipse,
    eclipse_fast,
)
from robustlaw.empirical.lipschitz.lipsdp import lipsdp_layer, lipsdp_neuron
from robustlaw.empirical.lipschitz.lipsdp_prepare import LipSDPOptions
from robustlaw.empirical.lipschitz.lower import GradientOptions, gradient_lower_bound
from robustlaw.empirical.lipschitz.result import (
    KINDS,
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
)
from robustlaw.empirical.lipschitz.spectral import SpectralOptions, spectral_product
from robustlaw.empirical.lipschitz.sphere import (
    SphereGradientOptions,
    sphere_gradient_lower_bound,
)
from robustlaw.empirical.lipschitz.weights import as_network
from robustlaw.errors import SolverError, SolverUnavailableError

__all__ = ["LIPSCHITZ_METHODS", "LipschitzMethod", "estimate_lipschitz"]


@dataclass(frozen=True, kw_only=True)
class LipschitzMethod:
    """A registered Lipschitz method.

    Attributes
    ----------
    function : callable
        ``function(net, options, *, X=None, generator=None)`` returning a
        :class:`~robustlaw.empirical.lipschitz.result.LipschitzEstimate` whose ``method`` is
        the registry name.
    options : type
        The method's frozen options dataclass (validated when created).
    kind : {"lower", "upper"}
        What its values are.
    """

    function: Callable[..., LipschitzEstimate]
    options: type
    kind: str

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", KINDS)


#: name -> :class:`LipschitzMethod`, from the loosest upper bound to the lower estimate.
LIPSCHITZ_METHODS: dict[str, LipschitzMethod] = {
    "spectral": LipschitzMethod(function=spectral_product, options=SpectralOptions, kind="upper"),
    "eclipse-fast": LipschitzMethod(
        function=eclipse_fast, options=EclipseFastOptions, kind="upper"
    ),
    "eclipse": LipschitzMethod(function=eclipse, options=EclipseOptions, kind="upper"),
    "lipsdp-layer": LipschitzMethod(function=lipsdp_layer, options=LipSDPOptions, kind="upper"),
    "lipsdp-neuron": LipschitzMethod(function=lipsdp_neuron, options=LipSDPOptions, kind="upper"),
    "gradient": LipschitzMethod(
        function=gradient_lower_bound, options=GradientOptions, kind="lower"
    ),
    "gradient-sphere": LipschitzMethod(
        function=sphere_gradient_lower_bound, options=SphereGradientOptions, kind="lower"
    ),
}


def _failed(name: str, kind: str, net, err: Exception, start: float) -> LipschitzEstimate:
    return LipschitzEstimate(
        value=np.full(net.n_members, np.nan) if net.batched else float("nan"),
        kind=kind,
        method=name,
        status=EstimateStatus.FAILED,
        certified=False,
        seconds=time.perf_counter() - start,
        details={"error": f"{type(err).__name__}: {err}"},
    )


def estimate_lipschitz(
    name: str,
    net,
    options=None,
    *,
    X=None,
    generator: torch.Generator | None = None,
    raise_on_failure: bool = False,
) -> LipschitzEstimate:
    """Run a registered Lipschitz method on a network or on every member of an ensemble.

    Parameters
    ----------
    name : str
        A key of :data:`LIPSCHITZ_METHODS` (hyphenated: ``"eclipse-fast"``,
        ``"lipsdp-neuron"``, ...).
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`; an ensemble gives one
        value per member.
    options : dataclass, optional
        An instance of ``LIPSCHITZ_METHODS[name].options``; its defaults when omitted.
    X : array_like, optional
        Points for methods that use data (``"gradient"``); ignored by the others.
    generator : torch.Generator, optional
        For randomized methods; ignored by the others.
    raise_on_failure : bool
        Raise :class:`~robustlaw.errors.SolverError` on a failed or uncertified result,
        instead of returning it with its status (``FAILED`` carries NaN and
        ``details["error"]``).

    Returns
    -------
    LipschitzEstimate
        With ``method == name``.

    Raises
    ------
    UnknownNameError
        For an unknown name (the message lists the valid names, or gives the new spelling of
        an old underscore name).
    ValidationError
        For bad weights or options of the wrong type (always raised: misuse is not a status).
    SolverUnavailableError
        For a solver that is not installed (always raised).
    SolverError
        With ``raise_on_failure=True``, for a failed solve (solver errors and the
        ``RuntimeError`` of a numerical routine) or an uncertified result.

    Examples
    --------
    >>> import numpy as np
    >>> est = estimate_lipschitz("spectral", [np.array([[3.0, 4.0]])])
    >>> round(est.value, 9), est.kind, est.method
    (5.0, 'upper', 'spectral')
    """
    entry = get_registered(LIPSCHITZ_METHODS, name, "Lipschitz method")
    options = resolve_options(options, entry.options, name)
    start = time.perf_counter()
    network = as_network(net)
    try:
        est = entry.function(network, options, X=X, generator=generator)
    except SolverUnavailableError:
        raise
    except (SolverError, RuntimeError) as err:
        if raise_on_failure:
            if isinstance(err, SolverError):
                raise
            raise SolverError(f"{name} failed: {type(err).__name__}: {err}") from err
        return _failed(name, entry.kind, network, err, start)
    if raise_on_failure:
        est.raise_for_status()
    return est
