"""MLP ensembles: init, forward against nn.Sequential, conversion, save/load, validation."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from robustlaw.empirical.ensemble import (
    Ensemble,
    MLPSpec,
    forward,
    init_mlp_ensemble,
    resolve_device,
)
from robustlaw.empirical.ensemble_io import (
    ensemble_from_sequentials,
    load_ensemble,
    member_to_sequential,
    save_ensemble,
)
from robustlaw.errors import UnknownNameError, ValidationError

SPEC = MLPSpec(layer_sizes=(4, 7, 5, 2))


def _masked(ens, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ens.with_masks({k: torch.rand(v.shape, generator=g) < 0.6 for k, v in ens.masks.items()})


def test_forward_equals_each_member_as_sequential():
    ens = _masked(init_mlp_ensemble(SPEC, seeds=[1, 2, 3], dtype=torch.float64))
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    xk = torch.randn(3, 6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    shared, own = ens(x), ens(xk)
    assert shared.shape == (3, 6, 2)
    for k in range(3):
        net = member_to_sequential(ens, k)
        torch.testing.assert_close(shared[k], net(x), atol=1e-12, rtol=0)
        torch.testing.assert_close(own[k], net(xk[k]), atol=1e-12, rtol=0)


def test_member_init_independent_of_batch_mates():
    together = init_mlp_ensemble(SPEC, seeds=[5, 9])
    alone = init_mlp_ensemble(SPEC, seeds=[9])
    for k, v in together.params.items():
        assert torch.equal(v[1], alone.params[k][0])
    assert not torch.equal(together.params["0.weight"][0], together.params["0.weight"][1])


def test_default_init_is_torch_kaiming_uniform():
    spec = MLPSpec(layer_sizes=(400, 300, 1))
    w = init_mlp_ensemble(spec, seeds=[0], dtype=torch.float64).params["0.weight"]
    bound = 1 / math.sqrt(400)
    assert float(w.abs().max()) <= bound
    # U(-b, b) has variance b^2 / 3
    assert abs(float(w.var()) / (bound**2 / 3) - 1) < 0.02


@pytest.mark.parametrize(
    ("init", "std", "bias_zero"),
    [("kaiming-normal", math.sqrt(2 / 400), True), ("standard-normal", 1.0, False)],
)
def test_init_registry(init, std, bias_zero):
    spec = MLPSpec(layer_sizes=(400, 300, 1), init=init)
    ens = init_mlp_ensemble(spec, seeds=[0], dtype=torch.float64)
    w, b = ens.params["0.weight"], ens.params["0.bias"]
    assert abs(float(w.std()) / std - 1) < 0.02
    assert bool((b == 0).all()) == bias_zero


def test_dtype_and_device():
    ens = init_mlp_ensemble(SPEC, seeds=[0], dtype=torch.float64)
    assert ens.dtype == torch.float64
    assert ens(torch.zeros(1, 4, dtype=torch.float64)).dtype == torch.float64
    f32 = init_mlp_ensemble(SPEC, seeds=[0])
    torch.testing.assert_close(f32.params["0.weight"], ens.params["0.weight"].float())
    moved = f32.to(dtype=torch.float64)
    assert moved.dtype == torch.float64
    assert moved.masks["0.weight"].dtype == torch.bool
    with pytest.raises(ValidationError, match="dtype"):
        init_mlp_ensemble(SPEC, seeds=[0], dtype=torch.int64)
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="no CUDA GPU"):
            init_mlp_ensemble(SPEC, seeds=[0], device="cuda")
        with pytest.raises(ValidationError, match="no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("gpu", [False, True])
def test_auto_device_follows_gpu_availability(monkeypatch, gpu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert resolve_device("auto") == torch.device("cuda" if gpu else "cpu")


def test_with_masks_zeroes_and_density():
    ens = init_mlp_ensemble(SPEC, seeds=[0, 1])
    masks = {k: torch.zeros_like(m) for k, m in ens.masks.items()}
    masks["0.weight"][0, :, :2] = True  # member 0 keeps 14 of 28 + 35 + 10 = 73 weights
    pruned = ens.with_masks(masks)
    assert bool((pruned.params["2.weight"] == 0).all())
    torch.testing.assert_close(pruned.density(), torch.tensor([14 / 73, 0.0], dtype=torch.float64))
    assert torch.equal(pruned.params["0.bias"], ens.params["0.bias"])  # biases never pruned
    assert torch.equal(
        ens.params["2.weight"], init_mlp_ensemble(SPEC, seeds=[0, 1]).params["2.weight"]
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m.pop("0.weight"), "keys"),
        (lambda m: m.__setitem__("0.weight", m["0.weight"].float()), "torch.bool"),
        (lambda m: m.__setitem__("0.weight", m["0.weight"][:, :3]), "shape"),
        (lambda m: m.__setitem__("9.weight", m["0.weight"]), "keys"),
    ],
)
def test_bad_masks_raise(change, match):
    ens = init_mlp_ensemble(SPEC, seeds=[0, 1])
    masks = dict(ens.masks)
    change(masks)
    with pytest.raises(ValidationError, match=match):
        ens.with_masks(masks)
    with pytest.raises(ValidationError, match=match):
        Ensemble(spec=SPEC, params=ens.params, masks=masks, seeds=(0, 1))


def test_bad_params_and_spec_raise():
    ens = init_mlp_ensemble(SPEC, seeds=[0, 1])
    params = dict(ens.params)
    params["2.weight"] = params["2.weight"][:, :, :3]
    with pytest.raises(ValidationError, match="2.weight"):
        Ensemble(spec=SPEC, params=params, masks=ens.masks)
    with pytest.raises(ValidationError, match="layer_sizes"):
        MLPSpec(layer_sizes=(3,))
    with pytest.raises(ValidationError, match="init"):
        MLPSpec(layer_sizes=(3, 1), init="orthogonal")
    with pytest.raises(ValidationError, match="seeds"):
        init_mlp_ensemble(SPEC, seeds=[])


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((3,), "layer_sizes must have at least two entries, got (3,)"),
        ((3, 0), "layer_sizes entry must be an integer >= 1, got 0"),
        ((3, 2.0), "layer_sizes entry must be an integer >= 1, got 2.0"),
        ((True, 2), "layer_sizes entry must be an integer >= 1, got True"),
    ],
)
def test_bad_layer_sizes_raise(sizes, message):
    with pytest.raises(ValidationError) as info:
        MLPSpec(layer_sizes=sizes)
    assert str(info.value) == message


def test_numpy_layer_sizes_become_ints():
    assert MLPSpec(layer_sizes=(np.int64(3), 2)).layer_sizes == (3, 2)


@pytest.mark.parametrize("old", ["kaiming_uniform", "kaiming_normal", "standard_normal"])
def test_initializers_refuse_the_underscore_name(old):
    new = old.replace("_", "-")
    with pytest.raises(UnknownNameError, match=f"'{old}': it is now called '{new}'"):
        MLPSpec(layer_sizes=(3, 1), init=old)
    assert MLPSpec(layer_sizes=(3, 1), init=new).init == new


def test_sequential_round_trip():
    nets = [nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)) for _ in range(2)]
    ens = ensemble_from_sequentials(nets, seeds=[7, 8])
    assert ens.spec == MLPSpec(layer_sizes=(3, 4, 1), activation="tanh")
    x = torch.randn(5, 3)
    back = [member_to_sequential(ens, k) for k in range(2)]
    for net, b in zip(nets, back, strict=True):
        torch.testing.assert_close(b(x), net(x), atol=0, rtol=0)
    with pytest.raises(ValidationError, match="alternate"):
        ensemble_from_sequentials([nn.Sequential(nn.ReLU())])
    with pytest.raises(ValidationError, match="one architecture"):
        ensemble_from_sequentials([nets[0], nn.Sequential(nn.Linear(3, 2))])
    for k in (2, -1, 1.0, True):
        with pytest.raises(ValidationError, match=f"k must be an integer >= 0 and <= 1, got {k}"):
            member_to_sequential(ens, k)


def test_member_to_sequential_applies_masks():
    ens = _masked(init_mlp_ensemble(SPEC, seeds=[0]))
    net = member_to_sequential(ens, 0)
    assert torch.equal(net[0].weight.detach() != 0, ens.masks["0.weight"][0])


def test_save_load_round_trip(tmp_path):
    spec = MLPSpec(layer_sizes=(4, 6, 1), activation="tanh", init="kaiming-normal")
    ens = _masked(init_mlp_ensemble(spec, seeds=[3, 4], dtype=torch.float64))
    path = tmp_path / "ens.pt"
    save_ensemble(path, ens)
    back = load_ensemble(path)
    assert back.spec == spec
    assert back.seeds == (3, 4)
    assert back.dtype == torch.float64
    for k in ens.params:
        assert torch.equal(back.params[k], ens.params[k])
    for k in ens.masks:
        assert torch.equal(back.masks[k], ens.masks[k])
    x = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(back(x), ens(x))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValidationError, match="not a robustlaw ensemble"):
        load_ensemble(tmp_path / "other.pt")


def test_forward_without_masks_equals_premasked():
    ens = _masked(init_mlp_ensemble(SPEC, seeds=[0, 1]))
    x = torch.randn(3, 4)
    masked = {k: v * ens.masks[k] if k in ens.masks else v for k, v in ens.params.items()}
    assert torch.equal(forward(SPEC, masked, None, x), forward(SPEC, ens.params, ens.masks, x))
