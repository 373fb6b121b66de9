"""Summaries the experiments' tables and figures share: the mean over seeds and its error."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["mean_se"]


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(count); 0 for one value).

    Examples
    --------
    >>> mean_se([1.0, 3.0])
    (2.0, 1.0)
    >>> mean_se([4.0])
    (4.0, 0.0)
    """
    x = np.asarray(list(values), dtype=float)
    se = x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else 0.0
    return float(x.mean()), float(se)
