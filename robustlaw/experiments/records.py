"""Record types: the typed rows an experiment measures, and the columns the store derives.

An experiment defines its record as a frozen dataclass whose fields are ``int``, ``float``,
``bool`` or ``str``, each optionally ``| None``. :func:`record_columns` turns the type into
store columns (name, SQLite type, Python type, nullable) and :func:`record_row` checks one
record against them: a wrong type, a NaN (declare ``float | None`` and store None instead) or a
None in a field that does not allow it raises :class:`~robustlaw.errors.ValidationError`
naming the field, before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustlaw.errors import ValidationError

__all__ = ["Column", "from_stored", "record_columns", "record_row", "row_value"]

_SQLITE_TYPES = {int: "INTEGER", float: "REAL", bool: "INTEGER", str: "TEXT"}

# NumPy scalars are accepted (measurements produce them) and stored as Python values.
_ACCEPTS = {
    bool: lambda v: isinstance(v, (bool, np.bool_)),
    int: lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
    float: lambda v: (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    ),
    str: lambda v: isinstance(v, str),
}


@dataclass(frozen=True)
class Column:
    """One column of a record table.

    Attributes
    ----------
    name : str
        The record field's name.
    type : type
        ``int``, ``float``, ``bool`` or ``str``.
    nullable : bool
        Whether the field admits None.
    """

    name: str
    type: type
    nullable: bool

    @property
    def sqlite_type(self) -> str:
        """The SQLite storage class (booleans are stored as 0 or 1)."""
        return _SQLITE_TYPES[self.type]

    @property
    def declaration(self) -> str:
        """The column's SQL declaration, e.g. ``"lip_upper" REAL NOT NULL``."""
        return f'"{self.name}" {self.sqlite_type}{"" if self.nullable else " NOT NULL"}'


def _column(record_type: type, name: str, hint: Any) -> Column:
    args = typing.get_args(hint)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    nullable = union and type(None) in args
    base = [a for a in args if a is not type(None)] if union else [hint]
    if len(base) != 1 or base[0] not in _SQLITE_TYPES:
        raise ValidationError(
            f"field {name!r} of record {record_type.__name__} has type {hint!r}; record fields "
            "must be int, float, bool or str, optionally '| None'"
        )
    return Column(name=name, type=base[0], nullable=nullable)


def record_columns(record_type: type) -> tuple[Column, ...]:
    """The store columns of a record type, in field order.

    Raises
    ------
    ValidationError
        If ``record_type`` is not a frozen dataclass or has a field of another type.

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Row:
    ...     seed: int
    ...     value: float | None
    >>> [c.declaration for c in record_columns(Row)]
    ['"seed" INTEGER NOT NULL', '"value" REAL']
    """
    if not (isinstance(record_type, type) and dataclasses.is_dataclass(record_type)):
        raise ValidationError(f"a record type must be a dataclass, got {record_type!r}")
    if not record_type.__dataclass_params__.frozen:
        raise ValidationError(f"record type {record_type.__name__} must be frozen")
    hints = typing.get_type_hints(record_type)
    return tuple(
        _column(record_type, f.name, hints[f.name]) for f in dataclasses.fields(record_type)
    )


def row_value(column: Column, value: Any, *, where: str) -> Any:
    """Check one value against its column and return it as stored (bool as 0/1)."""
    if value is None:
        if column.nullable:
            return None
        raise ValidationError(f"{where}: field {column.name!r} is None but not declared '| None'")
    expected = column.type
    if not _ACCEPTS[expected](value):
        raise ValidationError(
            f"{where}: field {column.name!r} must be {expected.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
    value = expected(value)
    if expected is float and math.isnan(value):
        raise ValidationError(
            f"{where}: field {column.name!r} is NaN; declare it 'float | None' and store None"
        )
    return int(value) if expected is bool else value


def record_row(record: Any, record_type: type, columns: tuple[Column, ...]) -> tuple:
    """Check ``record`` and return its values in column order, ready for the store.

    Raises
    ------
    ValidationError
        If ``record`` is not a ``record_type`` or a field has a wrong value.
    """
    if type(record) is not record_type:
        raise ValidationError(
            f"measure must return {record_type.__name__} records, got {type(record).__name__}"
        )
    where = f"record {record_type.__name__}"
    return tuple(row_value(c, getattr(record, c.name), where=where) for c in columns)


def from_stored(columns: tuple[Column, ...], values: tuple) -> dict[str, Any]:
    """A stored row's record fields as a dict, booleans turned back from 0/1."""
    return {
        c.name: bool(v) if c.type is bool and v is not None else v
        for c, v in zip(columns, values, strict=True)
    }
