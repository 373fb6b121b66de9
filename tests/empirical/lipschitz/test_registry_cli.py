"""The registry entry point and the ``robustlaw lipschitz`` command."""

import json

import numpy as np
import pytest
import scipy.io
import torch

from robustlaw.cli import main
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.ensemble_io import save_ensemble
from robustlaw.empirical.lipschitz import (
    LIPSCHITZ_METHODS,
    EclipseOptions,
    EstimateStatus,
    LipschitzMethod,
    SpectralOptions,
    estimate_lipschitz,
)
from robustlaw.errors import SolverError, UnknownNameError, ValidationError

W = [np.array([[1.0, 2.0], [0.0, 1.0], [2.0, 0.0]]), np.array([[1.0, -1.0, 2.0]])]


def test_every_registered_method_runs_and_says_its_kind():
    for name, entry in LIPSCHITZ_METHODS.items():
        est = estimate_lipschitz(W, name, generator=torch.Generator().manual_seed(0))
        assert est.kind == entry.kind
        assert est.status is EstimateStatus.OPTIMAL
        assert est.certified


def test_unknown_method_and_wrong_options():
    with pytest.raises(UnknownNameError, match="eclipse, gradient, lipsdp, spectral"):
        estimate_lipschitz(W, "lipsdp-network")
    with pytest.raises(ValidationError, match="EclipseOptions"):
        estimate_lipschitz(W, "eclipse", SpectralOptions())
    with pytest.raises(ValidationError, match="tol"):
        SpectralOptions(tol=0.0)
    with pytest.raises(UnknownNameError, match="activation"):
        EclipseOptions(activation="swish")


def test_failure_is_a_status_unless_asked_to_raise(monkeypatch):
    def boom(weights, **kwargs):
        raise SolverError("no multipliers certify anything")

    entry = LipschitzMethod(function=boom, options=SpectralOptions, kind="upper")
    monkeypatch.setitem(LIPSCHITZ_METHODS, "boom", entry)
    est = estimate_lipschitz(W, "boom")
    assert est.status is EstimateStatus.FAILED
    assert np.isnan(est.value)
    assert not est.certified
    assert "certify" in est.details["error"]
    with pytest.raises(SolverError, match="certify"):
        estimate_lipschitz(W, "boom", raise_on_failure=True)


def test_ensemble_runs_member_by_member_for_lipsdp():
    pytest.importorskip("robustlaw.empirical.lipschitz.lipsdp")
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    est = estimate_lipschitz(ens, "lipsdp")
    assert est.values.shape == (2,)
    for k in range(2):
        single = estimate_lipschitz([w[k] for w in ens.masked_weights()], "lipsdp")
        assert est.values[k] == pytest.approx(single.value, rel=1e-9)


@pytest.fixture
def files(tmp_path):
    paths = {}
    np.savez(tmp_path / "w.npz", *W)
    paths["npz"] = tmp_path / "w.npz"
    np.savez(tmp_path / "named.npz", W1=W[1], W0=W[0])
    paths["named"] = tmp_path / "named.npz"
    cell = np.empty(2, dtype=object)
    cell[0], cell[1] = W
    scipy.io.savemat(tmp_path / "w.mat", {"weights": cell})
    paths["mat"] = tmp_path / "w.mat"
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(W[0]))
        model[2].weight.copy_(torch.tensor(W[1]))
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    paths["pt"] = tmp_path / "sd.pt"
    return paths


@pytest.mark.parametrize("kind", ["npz", "named", "mat", "pt"])
def test_cli_reads_every_format_to_the_same_value(files, kind, capsys):
    assert main(["lipschitz", str(files[kind]), "--method", "spectral", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = np.linalg.norm(W[0], 2) * np.linalg.norm(W[1], 2)
    assert out["value"] == pytest.approx(expected, rel=1e-9)
    assert out["kind"] == "upper"
    assert out["method"] == "spectral"
    assert out["status"] == "optimal"
    assert out["seconds"] >= 0


def test_cli_text_output_and_methods(files, capsys):
    assert main(["lipschitz", str(files["npz"]), "--method", "gradient"]) == 0
    line = capsys.readouterr().out
    assert "lower bound" in line
    assert "method=gradient" in line
    assert main(["lipschitz", str(files["npz"]), "--method", "eclipse", "--no-fast"]) == 0
    assert "method=eclipse " in capsys.readouterr().out


def test_cli_saved_ensemble_gives_one_value_per_member(tmp_path, capsys):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[0, 1, 2])
    save_ensemble(tmp_path / "ens.pt", ens)
    assert main(["lipschitz", str(tmp_path / "ens.pt"), "--method", "eclipse", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["value"]) == 3


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["lipschitz", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", W[0], W[0])
    assert main(["lipschitz", str(tmp_path / "bad.npz"), "--method", "spectral"]) == 2
    assert "do not chain" in capsys.readouterr().err
    (tmp_path / "w.txt").write_text("1 2 3")
    assert main(["lipschitz", str(tmp_path / "w.txt")]) == 2
