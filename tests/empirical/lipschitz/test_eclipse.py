"""ECLipsE-Fast and ECLipsE against hand-derived values and the LMI they decompose."""

import numpy as np
import pytest

from robustlaw.empirical.lipschitz import EclipseFastOptions, EclipseOptions, eclipse, eclipse_fast
from robustlaw.errors import SolverUnavailableError


def fast_reference(ws, m=0.5):
    """The closed form of Xu and Sivaranjani (2024), written out with numpy inverses."""
    x = np.eye(ws[0].shape[1])
    for w in ws[:-1]:
        k = w @ np.linalg.inv(x) @ w.T
        l = 1.0 / (2 * m**2 * np.linalg.eigvalsh(k)[-1])
        x = l * np.eye(w.shape[0]) - l**2 * m**2 * k
    return np.sqrt(np.max(np.linalg.eigvals(ws[-1].T @ ws[-1] @ np.linalg.inv(x)).real))


@pytest.mark.parametrize("seed", range(5))
def test_fast_matches_reference_formula(random_weights, seed):
    ws = random_weights((5, 7, 6, 4, 2), seed)
    assert eclipse_fast(ws).value == pytest.approx(fast_reference(ws), rel=1e-9)


def test_single_hidden_layer_closed_form():
    # one hidden layer: l = 2 / ||W0||^2, X1 = l I - l^2/4 W0 W0^T; rho = lambda_max(W1 X1^-1 W1^T)
    w0 = np.array([[2.0, 0.0], [0.0, 1.0]])
    w1 = np.array([[1.0, 1.0]])
    l = 2 / 4.0
    x1 = l * np.eye(2) - l**2 / 4 * w0 @ w0.T
    expected = np.sqrt(w1 @ np.linalg.inv(x1) @ w1.T).item()
    assert eclipse_fast([w0, w1]).value == pytest.approx(expected * (1 + 1e-12), rel=1e-12)


def test_single_linear_layer_is_its_norm(random_weights):
    (w,) = random_weights((6, 4), 0)
    assert eclipse_fast([w]).value == pytest.approx(np.linalg.norm(w, 2), rel=1e-12)
    assert eclipse([w]).value == pytest.approx(np.linalg.norm(w, 2), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_sdp_version_is_tighter_and_matches_cvxpy(random_weights, seed):
    ws = random_weights((4, 6, 6, 2), seed)
    fast = eclipse_fast(ws).value
    ours = eclipse(ws)
    ref = eclipse(ws, EclipseOptions(solver="CLARABEL"))
    assert ours.certified
    assert ours.value <= fast * (1 + 1e-12)
    assert ours.value == pytest.approx(ref.value, rel=3e-2)  # first-order: within ~2%


def test_batched_equals_one_by_one(random_weights):
    ws = random_weights((12, 8, 8, 3), 2, n_members=5)
    for method in (eclipse_fast, eclipse):
        batched = method(ws).value
        singles = [method([w[k] for w in ws]).value for k in range(5)]
        np.testing.assert_allclose(batched, singles, rtol=1e-9)


def test_zero_layer_gives_zero_and_slopes_scale(random_weights):
    ws = random_weights((3, 5, 1), 0)
    assert eclipse_fast([ws[0], np.zeros((1, 5))]).value == 0.0
    # sigmoid's slopes are a quarter of relu's: m scales by 1/4, so the bound scales by 1/4
    assert eclipse_fast(ws, EclipseFastOptions(activation="sigmoid")).value == pytest.approx(
        eclipse_fast(ws).value / 4, rel=1e-12
    )


def test_missing_solver_lists_installed(random_weights):
    with pytest.raises(SolverUnavailableError, match="installed: torch"):
        eclipse(random_weights((3, 4, 1), 0), EclipseOptions(solver="MOSEK_NOT_HERE"))
