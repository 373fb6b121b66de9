"""Input normalization, validation, exact compression and dead-unit removal."""

import itertools

import numpy as np
import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import (
    EstimateStatus,
    LipschitzEstimate,
    activation_slope_bounds,
    as_network,
    as_weight_list,
    compress_input,
    drop_dead_units,
    weights_from_ensemble,
)
from robustlaw.errors import SolverError, UnknownNameError, ValidationError


def pattern_max(ws):
    """max over all 0/1 activation patterns of ||W_L D ... D W_0||_2 (one hidden layer)."""
    w0, w1 = (np.asarray(w) for w in ws)
    best = 0.0
    for d in itertools.product((0.0, 1.0), repeat=w0.shape[0]):
        best = max(best, np.linalg.norm(w1 @ np.diag(d) @ w0, 2))
    return best


def test_sequential_and_state_dict_agree_and_drop_biases():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    a = as_weight_list(model)
    b = as_weight_list(model.state_dict())
    assert [w.dtype for w in a] == [torch.float64] * 2
    for x, y, ref in zip(a, b, (model[0].weight, model[2].weight), strict=True):
        torch.testing.assert_close(x, ref.detach().double())
        torch.testing.assert_close(y, x)
    net = as_network(model)
    assert net.biases is not None
    assert net.layer_sizes == (3, 4, 2)
    assert not net.batched


def test_ensemble_masks_are_exact_zeros():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    mask = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(0)) > 0.5
    ens.masks["0.weight"] = mask
    net = as_network(ens)
    assert net.batched
    assert net.n_members == 2
    assert bool((net.weights[0][~mask] == 0).all())
    one = weights_from_ensemble(ens, 1)
    torch.testing.assert_close(one[0], net.weights[0][1])
    with pytest.raises(ValidationError, match="member"):
        weights_from_ensemble(ens, 2)
    with pytest.raises(ValidationError, match="2 members"):
        as_weight_list(ens)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([], "empty"),
        ([np.ones((2, 3)), np.ones((2, 3))], r"weights\[1\] has shape \(2, 3\).*weights\[0\]"),
        ([np.array([[1.0, np.nan]])], "finite"),
        ([np.array([[1.0, np.inf]])], "finite"),
        ([np.ones(3)], "dimensions"),
        ([np.ones((2, 3)), np.ones((1, 1, 2))], "all 2-D"),
        (3.0, "sequence"),
    ],
)
def test_bad_weights_raise_validation_error(weights, match):
    with pytest.raises(ValidationError, match=match):
        as_network(weights)


def test_unknown_activation_lists_names():
    with pytest.raises(UnknownNameError, match="relu.*sigmoid"):
        as_network([np.ones((1, 2))], activation="swish")
    with pytest.raises(UnknownNameError, match="leaky-relu"):
        activation_slope_bounds("gelu")
    with pytest.raises(UnknownNameError, match="now called 'leaky-relu'"):
        activation_slope_bounds("leaky_relu")
    with pytest.raises(ValidationError, match="alpha <= beta"):
        activation_slope_bounds((1.0, 0.5))
    assert activation_slope_bounds("sigmoid") == (0.0, 0.25)


def test_sequential_with_unsupported_module_is_rejected():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(ValidationError, match="BatchNorm1d"):
        as_network(model)


@pytest.mark.parametrize("seed", range(5))
def test_compress_input_keeps_every_pattern_norm(random_weights, seed):
    ws = [torch.as_tensor(w) for w in random_weights((9, 4, 2), seed)]
    c = compress_input(ws)
    assert c[0].shape == (4, 4)
    for d in itertools.product((0.0, 1.0), repeat=4):
        dm = torch.diag(torch.tensor(d, dtype=torch.float64))
        torch.testing.assert_close(
            torch.linalg.matrix_norm(ws[1] @ dm @ ws[0], 2),
            torch.linalg.matrix_norm(c[1] @ dm @ c[0], 2),
        )


def test_compress_input_batched_and_noop():
    ws = [torch.randn(3, 4, 9, dtype=torch.float64), torch.randn(3, 1, 4, dtype=torch.float64)]
    c = compress_input(ws)
    torch.testing.assert_close(
        torch.linalg.matrix_norm(c[0], 2), torch.linalg.matrix_norm(ws[0], 2)
    )
    square = [torch.eye(3, dtype=torch.float64)]
    assert compress_input(square)[0] is square[0]


@pytest.mark.parametrize("seed", range(5))
def test_drop_dead_units_keeps_constant(random_weights, seed):
    w0, w1 = random_weights((3, 8, 2), seed)
    w0[[1, 4]] = 0.0  # no incoming weight
    w1[:, [2, 6]] = 0.0  # no outgoing weight
    out = drop_dead_units([torch.as_tensor(w0), torch.as_tensor(w1)])
    assert out[0].shape == (4, 3)
    assert out[1].shape == (2, 4)
    assert pattern_max(out) == pytest.approx(pattern_max([w0, w1]), rel=1e-12)


def test_drop_dead_units_whole_layer_dead_leaves_zero_net():
    ws = [torch.ones(3, 2), torch.zeros(4, 3), torch.ones(1, 4)]
    out = drop_dead_units(ws)
    assert [tuple(w.shape) for w in out] == [(1, 2), (1, 1), (1, 1)]
    assert all(bool((w == 0).all()) for w in out)


def test_estimate_record_checks():
    with pytest.raises(ValidationError, match="kind"):
        LipschitzEstimate(
            value=1.0, kind="middle", method="x", status=EstimateStatus.OPTIMAL,
            certified=True, seconds=0.0,
        )  # fmt: skip
    with pytest.raises(SolverError, match="NaN"):
        LipschitzEstimate(
            value=float("nan"), kind="upper", method="x", status=EstimateStatus.OPTIMAL,
            certified=True, seconds=0.0,
        )  # fmt: skip
    est = LipschitzEstimate(
        value=np.array([1.0, 2.0]), kind="upper", method="x",
        status=EstimateStatus.INACCURATE, certified=False, seconds=0.0,
    )  # fmt: skip
    assert est.batched
    assert est.n_members == 2
    assert est.to_dict()["value"] == [1.0, 2.0]
    with pytest.raises(SolverError, match="inaccurate"):
        est.raise_for_status()
    assert all(s.message for s in EstimateStatus)
