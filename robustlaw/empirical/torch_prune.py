"""Masks to and from ``torch.nn.utils.prune``, for users who already prune that way.

robustlaw applies masks functionally (METHODS.md §2). ``torch.nn.utils.prune`` instead
re-parametrizes a module: the parameter ``<name>`` becomes ``<name>_orig``, a buffer
``<name>_mask`` is added and a forward pre-hook recomputes ``name = orig * mask``. These
adapters move one member's masks (keyed ``"<module path>.<parameter>"``, e.g. ``"0.weight"``)
between the two representations.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from robustlaw.errors import ValidationError

__all__ = ["from_torch_prune", "to_torch_prune"]


def _split(key: str) -> tuple[str, str]:
    module, _, name = key.rpartition(".")
    return module, name


def to_torch_prune(model: nn.Module, mask: dict[str, torch.Tensor]) -> nn.Module:
    """Install ``mask`` on ``model`` with ``prune.custom_from_mask`` (in place).

    Parameters
    ----------
    model : torch.nn.Module
        A single network (e.g. from :func:`robustlaw.empirical.member_to_sequential`).
    mask : dict of str to torch.Tensor
        Boolean masks keyed by parameter name, each of its parameter's shape. Applying a mask to
        an already pruned parameter combines the two, as repeated torch pruning does.

    Returns
    -------
    torch.nn.Module
        ``model`` itself, now carrying ``<name>_orig`` parameters and ``<name>_mask`` buffers.

    Raises
    ------
    ValidationError
        If a key names no parameter or a mask has the wrong shape or dtype.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> m = {"0.weight": torch.tensor([[True, False], [True, True]])}
    >>> (to_torch_prune(net, m)[0].weight.detach() != 0).tolist()
    [[True, False], [True, True]]
    """
    for key, m in mask.items():
        path, name = _split(key)
        try:
            module = model.get_submodule(path)
        except AttributeError:
            raise ValidationError(f"mask key {key!r} names no submodule of the model") from None
        current = getattr(module, name, None)
        if not isinstance(current, torch.Tensor):
            raise ValidationError(f"mask key {key!r} names no parameter of the model")
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != current.shape:
            raise ValidationError(
                f"mask {key!r} must be a bool tensor of shape {tuple(current.shape)}, got "
                f"{getattr(m, 'dtype', type(m).__name__)} {tuple(getattr(m, 'shape', ()))}"
            )
        prune.custom_from_mask(module, name, m.to(current.device))
    return model


def from_torch_prune(model: nn.Module, *, remove: bool = False) -> dict[str, torch.Tensor]:
    """Read the masks torch pruning installed on ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        A network pruned with ``torch.nn.utils.prune``.
    remove : bool
        Also make the pruning permanent (``prune.remove``): the module gets back a plain
        ``<name>`` parameter holding the masked values, and the hooks and buffers go.

    Returns
    -------
    dict of str to torch.Tensor
        Boolean masks keyed ``"<module path>.<parameter>"`` (the ``state_dict`` key the
        parameter has without pruning).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> _ = to_torch_prune(net, {"0.weight": torch.eye(2, dtype=torch.bool)})
    >>> from_torch_prune(net)["0.weight"].tolist()
    [[True, False], [False, True]]
    """
    masks: dict[str, torch.Tensor] = {}
    for path, module in model.named_modules():
        for hook in list(module._forward_pre_hooks.values()):
            if not isinstance(hook, prune.BasePruningMethod):
                continue
            name = hook._tensor_name
            key = f"{path}.{name}" if path else name
            masks[key] = getattr(module, f"{name}_mask").detach().to(torch.bool).clone()
            if remove:
                prune.remove(module, name)
    return masks
