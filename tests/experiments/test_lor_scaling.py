"""``lor-scaling`` end to end at the tiny preset; Ray gives the local table; the demo draws.

Every recorded constant is recomputed here from its formula (THEORY.md §2.3, §2.4, §3.4),
independently of robustlaw.bounds.
"""

import math
import shutil

import pytest

from robustlaw.cli import main
from robustlaw.experiments import get_experiment, load, run

EXP = get_experiment("lor-scaling")
TINY = EXP.preset("tiny")
VOLATILE = ("wall_time_s",)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("lor") / "local.sqlite"
    run("lor-scaling", "tiny", store=path, device="cpu", threads=1, progress=False)
    return path


@pytest.fixture(scope="module")
def rows(local_store):
    return load(local_store, "lor-scaling", as_frame=False)


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def test_every_member_is_stored_once(rows):
    n_dense = len(TINY.n_samples) * len(TINY.n_features) * len(TINY.dense_widths) * len(TINY.seeds)
    n_sparse = len(TINY.methods) * len(TINY.densities) * len(TINY.seeds)
    assert len(rows) == n_dense + n_sparse
    assert {r["method"] for r in rows} == {"dense", *TINY.methods}
    assert len({(r["unit_key"], r["row"]) for r in rows}) == len(rows)


def test_counts_are_exact(rows):
    for r in rows:
        width, d, depth = r["width"], r["d"], r["depth"]
        sizes = (d, *[width] * depth, 1)
        prunable = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
        assert r["prunable"] == prunable
        assert r["p"] == prunable + width * depth + 1
        keep = prunable - math.ceil((1 - r["density"]) * prunable - 1e-9)
        assert r["kept_weights"] == keep
        assert r["kept"] == keep + width * depth + 1


def test_fit_and_lipschitz_band_are_consistent(rows):
    for r in rows:
        assert r["fit_below_noise"] == (r["train_mse"] <= 1 - r["eps"])
        if r["n_steps"] < TINY.max_steps:
            assert r["fit_below_noise"]
        assert 0 < r["lip_lower"] <= r["lip_upper"] * (1 + 1e-6)
        assert r["lip_upper_certified"]
        assert (r["lip_lower_status"], r["lip_upper_status"]) == ("optimal", "optimal")
        assert (r["lip_lower_method"], r["lip_upper_method"]) == (
            TINY.lower_method,
            TINY.upper_method,
        )
        small = r["width"] * r["depth"] <= TINY.sdp_max_neurons
        assert r["lip_sdp_status"] == ("optimal" if small else "skipped")
        assert (r["lip_sdp"] is not None) == small
        if small:
            assert r["lip_lower"] <= r["lip_sdp"] * (1 + 1e-6)
            assert r["lip_sdp"] <= r["lip_upper"] * (1 + 1e-6)
    assert any(r["lip_sdp"] is not None for r in rows)  # the SDP ran where allowed


def test_theorem_constants_follow_their_formulas(rows):
    for r in rows:
        n, d, p, kept, eps, delta = r["n"], r["d"], r["p"], r["kept"], r["eps"], r["delta"]
        assert r["c"] == 1.0
        assert r["sigma2"] == 1.0
        assert r["W"] == pytest.approx(2 * r["weight_box"] * math.sqrt(p))
        assert r["J"] == pytest.approx(
            r["input_radius"] * (r["weight_box"] * p) ** (r["depth"] + 1)
        )
        assert r["in_box"] == (r["w_inf"] <= r["weight_box"])
        log_binom = (
            math.lgamma(r["prunable"] + 1)
            - math.lgamma(r["kept_weights"] + 1)
            - math.lgamma(r["prunable"] - r["kept_weights"] + 1)
        ) / math.log(2)
        assert r["mask_entropy_bits"] == pytest.approx(log_binom, rel=1e-9, abs=1e-9)
        assert r["data_dependent"] == (r["method"] == "snip")
        info = log_binom if r["data_dependent"] else 0.0
        assert r["mask_info_bits"] == pytest.approx(info, abs=1e-9)
        p_eff = info + kept * math.log2(1 + 60 * r["W"] * r["J"] / eps)
        assert r["p_eff"] == pytest.approx(p_eff, rel=1e-10)
        nfp = (
            eps
            / (1152 * math.sqrt(r["c"]))
            * math.sqrt(n * d * delta / (p_eff + delta / 2 * math.log(4 / delta)))
        )
        assert r["bound_nfp"] == pytest.approx(nfp, rel=1e-10)
        log_term = p * math.log(60 * r["W"] * r["J"] / eps) + math.log(4 / delta)
        assert r["bound_bs"] == pytest.approx(eps / 512 * math.sqrt(n * d / log_term), rel=1e-10)
        assert r["k_condition_bs"] == (8**4 * math.log(8 / delta) <= n * eps**2)


def test_provenance(rows):
    import torch

    import robustlaw

    for r in rows:
        assert r["package_version"] == robustlaw.__version__
        assert r["torch_version"] == torch.__version__
        assert (r["device"], r["dtype"]) == ("cpu", TINY.dtype)


def test_demo_resumes_the_store_and_draws_every_figure(local_store, tmp_path, capsys):
    """`robustlaw demo` on a folder holding the tiny results: nothing reruns, all is drawn."""
    out = tmp_path / "demo"
    out.mkdir()
    shutil.copy(local_store, out / "results.sqlite")
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "L_BS" in text  # the bounds table comes first
    assert f"0 work units run, {len(EXP.expand(TINY))} already stored" in text
    assert "ratio_nfp" in text
    assert "the law predicts -0.5" in text
    figures = sorted((out / "figures").iterdir())
    want = sorted(f"lor-scaling-{f}.{e}" for f in EXP.figures for e in ("png", "pdf"))
    assert [p.name for p in figures] == want
    assert all(p.stat().st_size > 5000 and str(p) in text for p in figures)


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime for the module (it takes seconds to start)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.timeout(300)
def test_ray_executor_gives_the_local_table_bitwise(ray_runtime, rows, tmp_path):
    path = tmp_path / "ray.sqlite"
    summary = run(
        "lor-scaling", "tiny", store=path, device="cpu", executor="ray", threads=1, progress=False
    )
    assert (summary.executor, summary.n_run) == ("ray", len(EXP.expand(TINY)))
    assert _strip(load(path, "lor-scaling", as_frame=False)) == _strip(rows)
    assert ray_runtime.is_initialized()  # a runtime the executor did not start is left running
