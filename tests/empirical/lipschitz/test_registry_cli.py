"""The registry, its one signature, :func:`estimate_lipschitz`, and ``robustlaw lipschitz``."""

import dataclasses
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
    EclipseFastOptions,
    EclipseOptions,
    EstimateStatus,
    GradientOptions,
    LipSDPOptions,
    SpectralOptions,
    SphereGradientOptions,
    estimate_lipschitz,
)
from robustlaw.empirical.lipschitz import lipsdp as lipsdp_module
from robustlaw.errors import SolverError, UnknownNameError, ValidationError

W = [np.array([[1.0, 2.0], [0.0, 1.0], [2.0, 0.0]]), np.array([[1.0, -1.0, 2.0]])]
NAMES = [
    "eclipse",
    "eclipse-fast",
    "gradient",
    "gradient-sphere",
    "lipsdp-layer",
    "lipsdp-neuron",
    "spectral",
]
# one bad value per options class, and the option the message must name
BAD_OPTIONS = {
    GradientOptions: ("ascent_steps", 2.5),
    SpectralOptions: ("tol", 0.0),
    EclipseFastOptions: ("activation", "swish"),
    EclipseOptions: ("max_iter", -1),
    LipSDPOptions: ("ipm_max_iter", 0),
    SphereGradientOptions: ("step_size", 0.0),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_names_are_hyphenated_and_every_entry_is_function_options_kind():
    assert sorted(LIPSCHITZ_METHODS) == NAMES
    for entry in LIPSCHITZ_METHODS.values():
        assert [f.name for f in dataclasses.fields(entry)] == ["function", "options", "kind"]
        params = dataclasses.fields(entry.options())  # defaults are valid
        assert all(f.default is not None or f.name == "activation" for f in params)


@pytest.mark.parametrize("name", NAMES)
def test_single_linear_layer_gives_its_top_singular_value(name):
    w = np.random.default_rng(1).standard_normal((3, 5))
    exact = np.linalg.svd(w, compute_uv=False)[0]
    entry = LIPSCHITZ_METHODS[name]
    X = np.random.default_rng(2).standard_normal((8, 5))
    est = entry.function([w], entry.options(), X=X, generator=gen())
    assert (est.kind, est.method, est.status) == (entry.kind, name, EstimateStatus.OPTIMAL)
    assert est.certified
    assert est.value == pytest.approx(exact, rel=1e-9)
    assert est.value <= exact * (1 + 1e-12) if est.kind == "lower" else est.value >= exact


# the constant on R^d: "gradient-sphere" bounds the smaller one on the sphere (test_sphere.py)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "gradient-sphere"])
def test_ensemble_gives_one_value_per_member_bracketing_the_constant(name):
    # member k is x -> w_k relu(x): its constant is ||w_k^+|| ... at most ||w_k||, attained at
    # x > 0 where every unit is on, so ||w_k|| exactly
    w = np.random.default_rng(3).standard_normal((3, 1, 4))
    ws = [np.broadcast_to(np.eye(4), (3, 4, 4)).copy(), w]
    exact = np.linalg.norm(w[:, 0], axis=1)
    entry = LIPSCHITZ_METHODS[name]
    est = entry.function(ws, entry.options(), X=np.ones((5, 4)), generator=gen())
    assert est.values.shape == (3,)
    assert (est.kind, est.method) == (entry.kind, name)
    np.testing.assert_allclose(est.values, exact, rtol=1e-6)
    if est.kind == "lower":
        assert np.all(est.values <= exact * (1 + 1e-12))
    else:
        assert np.all(est.values >= exact * (1 - 1e-9))


@pytest.mark.parametrize(
    ("cls", "bad"), BAD_OPTIONS.items(), ids=lambda x: getattr(x, "__name__", "")
)
def test_bad_option_raises_validation_error_naming_it(cls, bad):
    option, value = bad
    with pytest.raises(ValidationError, match=option if option != "activation" else "swish"):
        cls(**{option: value})
    assert {entry.options for entry in LIPSCHITZ_METHODS.values()} == set(BAD_OPTIONS)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("eclipse_fast", "eclipse-fast"),
        ("lipsdp_neuron", "lipsdp-neuron"),
        ("lipsdp_layer", "lipsdp-layer"),
    ],
)
def test_underscore_names_are_refused_with_the_new_name(old, new):
    with pytest.raises(UnknownNameError, match=f"it is now called '{new}'"):
        estimate_lipschitz(old, W)


def test_unknown_method_and_wrong_options():
    with pytest.raises(UnknownNameError, match=", ".join(NAMES)):
        estimate_lipschitz("lipsdp-network", W)
    with pytest.raises(ValidationError, match="EclipseOptions, got SpectralOptions"):
        estimate_lipschitz("eclipse", W, SpectralOptions())
    with pytest.raises(ValidationError, match="LipSDPOptions, got EclipseOptions"):
        LIPSCHITZ_METHODS["lipsdp-neuron"].function(W, EclipseOptions())
    with pytest.raises(ValidationError, match="do not chain"):
        estimate_lipschitz("spectral", [W[0], W[0]])


@pytest.mark.parametrize(
    "error",
    [SolverError("no multipliers certify anything"), RuntimeError("cvxpy: Solver 'SCS' failed")],
)
def test_solver_failure_is_a_failed_status_unless_asked_to_raise(monkeypatch, error):
    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(lipsdp_module, "solve_ipm", boom)
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    est = estimate_lipschitz("lipsdp-neuron", ens)
    assert (est.status, est.method, est.kind, est.certified) == (
        EstimateStatus.FAILED, "lipsdp-neuron", "upper", False,
    )  # fmt: skip
    assert est.values.shape == (2,)
    assert np.isnan(est.values).all()
    assert est.details["error"] == f"{type(error).__name__}: {error}"
    with pytest.raises(SolverError, match="failed|certify") as info:
        estimate_lipschitz("lipsdp-neuron", W, raise_on_failure=True)
    assert type(info.value) is SolverError


def test_ensemble_runs_member_by_member_for_lipsdp():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    est = estimate_lipschitz("lipsdp-neuron", ens)
    assert est.values.shape == (2,)
    assert len(est.details["members"]) == 2
    for k in range(2):
        single = estimate_lipschitz("lipsdp-neuron", [w[k] for w in ens.masked_weights()])
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
    seeded = estimate_lipschitz("gradient", W, generator=gen(0)).value  # --seed 0 by default
    assert line.startswith(f"{seeded:.8g} (lower bound, certified) method=gradient status=optimal")
    assert main(["lipschitz", str(files["npz"]), "--method", "eclipse"]) == 0
    assert "(upper bound, certified) method=eclipse " in capsys.readouterr().out
    assert main(["lipschitz", str(files["npz"]), "--activation", "sigmoid", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["method"], out["solver"]) == ("lipsdp-neuron", "ipm")


def test_cli_saved_ensemble_gives_one_value_per_member(tmp_path, capsys):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[0, 1, 2])
    save_ensemble(tmp_path / "ens.pt", ens)
    assert main(["lipschitz", str(tmp_path / "ens.pt"), "--method", "eclipse-fast", "--json"]) == 0
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
    assert "FILE must end in" in capsys.readouterr().err
    np.savez(tmp_path / "w.npz", *W)
    assert main(["lipschitz", str(tmp_path / "w.npz"), "--method", "eclipse_fast"]) == 2
    assert "now called 'eclipse-fast'" in capsys.readouterr().err
    assert (
        main(["lipschitz", str(tmp_path / "w.npz"), "--method", "spectral", "--solver", "SCS"]) == 2
    )
    assert "--solver does not apply to --method spectral" in capsys.readouterr().err
