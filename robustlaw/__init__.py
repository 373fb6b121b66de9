"""robustlaw: check the Law of Robustness against real neural networks.

Subpackages
-----------
bounds
    The theorems as exact sympy expressions and fast numpy functions (no torch).
empirical
    Data, ensembles of masked networks, pruning, training and Lipschitz estimates (torch).
compare
    Measured-versus-bound tables and figures.
experiments
    Named, resumable sweeps stored in SQLite, run locally or on Ray.
"""

__version__ = "0.1.0"
