"""Canonical JSON and cell keys for experiment settings.

A settings dataclass is written as canonical JSON: sorted keys, no whitespace, fields left at
their defaults omitted (so adding a field with a do-nothing default keeps every old key), tuples
as lists, nested dataclasses as objects. Its SHA-256 digest, shortened to 16 hex digits, is the
settings hash that the store uses as part of its primary key (open_lth's ``hashname``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from typing import Any

from robustlaw.errors import ValidationError

__all__ = ["canonical_json", "settings_hash", "to_jsonable"]


def to_jsonable(obj: Any, *, drop_defaults: bool = True) -> Any:
    """Return ``obj`` as plain JSON data (dicts, lists, strings, numbers, booleans, None).

    Parameters
    ----------
    obj : object
        A dataclass instance, mapping, sequence, enum, or JSON scalar.
    drop_defaults : bool
        Omit dataclass fields that equal their declared default.

    Raises
    ------
    ValidationError
        For values JSON cannot hold exactly (NaN, infinity, arbitrary objects).

    Examples
    --------
    >>> to_jsonable({"b": (1, 2.5), "a": "x"})
    {'b': [1, 2.5], 'a': 'x'}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if drop_defaults and f.default is not dataclasses.MISSING and value == f.default:
                continue
            out[f.name] = to_jsonable(value, drop_defaults=drop_defaults)
        return out
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value, drop_defaults=drop_defaults)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, drop_defaults=drop_defaults) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, drop_defaults=drop_defaults) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValidationError(f"settings must hold finite numbers, got {obj!r}")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValidationError(
        f"settings values must be JSON data or dataclasses, got {type(obj).__name__}: {obj!r}"
    )


def canonical_json(obj: Any) -> str:
    """Return the canonical JSON text of ``obj``: sorted keys, no spaces, no defaults.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": (0.5, True)})
    '{"a":[0.5,true],"b":1}'
    """
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def settings_hash(experiment: str, settings: Any) -> str:
    """Return the 16-hex-digit key of an experiment's settings.

    The experiment's name is hashed together with the settings, so two experiments that share a
    settings class never share keys.

    Examples
    --------
    >>> len(settings_hash("demo", {"n": 3}))
    16
    >>> settings_hash("demo", {"n": 3}) == settings_hash("demo", {"n": 3})
    True
    """
    text = canonical_json({"experiment": experiment, "settings": settings})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
