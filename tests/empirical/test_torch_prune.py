"""torch.nn.utils.prune adapters: round trips and agreement with the functional masks."""

import pytest
import torch
from torch.nn.utils import prune

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.ensemble_io import member_to_sequential
from robustlaw.empirical.torch_prune import from_torch_prune, to_torch_prune
from robustlaw.errors import ValidationError


def _ensemble():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 6, 3)), seeds=[0, 1], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    return ens.with_masks({k: torch.rand(v.shape, generator=g) < 0.5 for k, v in ens.masks.items()})


def test_round_trip_gives_back_weights_masks_and_outputs():
    ens = _ensemble()
    raw = init_mlp_ensemble(ens.spec, seeds=[0, 1], dtype=torch.float64)
    net = member_to_sequential(raw, 1)
    mask = {k: m[1] for k, m in ens.masks.items()}
    to_torch_prune(net, mask)
    for key, m in mask.items():  # torch keeps the trained weights bitwise, masks on the fly
        layer = net[int(key.split(".")[0])]
        assert isinstance(layer.weight_orig, torch.nn.Parameter)
        assert torch.equal(layer.weight_orig.detach(), raw.params[key][1])
        assert torch.equal(layer.weight.detach(), raw.params[key][1] * m)
    back = from_torch_prune(net)
    assert back.keys() == mask.keys()
    assert all(torch.equal(back[k], mask[k]) and back[k].dtype == torch.bool for k in mask)
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net(x), ens(x)[1], atol=1e-12, rtol=0)
    masked = member_to_sequential(ens, 1)  # the ensemble's own export: the same network
    assert all(torch.equal(a, b) for a, b in zip(masked(x), net(x), strict=True))


def test_remove_makes_pruning_permanent():
    ens = _ensemble()
    net = member_to_sequential(init_mlp_ensemble(ens.spec, seeds=[0], dtype=torch.float64), 0)
    mask = {k: m[0] for k, m in ens.masks.items()}
    to_torch_prune(net, mask)
    back = from_torch_prune(net, remove=True)
    assert torch.equal(back["2.weight"], mask["2.weight"])
    assert not hasattr(net[0], "weight_mask")
    assert from_torch_prune(net) == {}
    assert torch.equal(net[2].weight.detach() != 0, mask["2.weight"])


def test_repeated_pruning_combines_masks():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    first = torch.tensor([[True, True, False], [True, False, True]])
    second = torch.tensor([[False, True, True], [True, True, True]])
    to_torch_prune(net, {"0.weight": first})
    to_torch_prune(net, {"0.weight": second})
    assert isinstance(
        net[0]._forward_pre_hooks[next(iter(net[0]._forward_pre_hooks))], prune.PruningContainer
    )
    assert torch.equal(from_torch_prune(net)["0.weight"], first & second)


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        ({"3.weight": torch.ones(2, 3, dtype=torch.bool)}, "no submodule"),
        ({"0.scale": torch.ones(2, 3, dtype=torch.bool)}, "no parameter"),
        ({"0.weight": torch.ones(3, 2, dtype=torch.bool)}, "shape"),
        ({"0.weight": torch.ones(2, 3)}, "bool"),
    ],
)
def test_bad_masks_raise(mask, match):
    with pytest.raises(ValidationError, match=match):
        to_torch_prune(torch.nn.Sequential(torch.nn.Linear(3, 2)), mask)
