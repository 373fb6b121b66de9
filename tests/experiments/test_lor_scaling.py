"""``lor-scaling`` end to end at the tiny preset; Ray gives the local table; the demo draws.

Every recorded floor is recomputed here from its formula (THEORY.md §2.3, §2.4, §3.4),
independently of robustlaw.bounds; the search's choice is checked against the raw rows.
"""

import math
import shutil
from collections import defaultdict

import pytest

from robustlaw.cli import main
from robustlaw.experiments import get_experiment, load, run
from robustlaw.experiments.lor_scaling.measure import grouped_ks as _grouped_ks
from robustlaw.experiments.lor_scaling.settings import dense_widths

EXP = get_experiment("lor-scaling")
TINY = EXP.preset("tiny")
VOLATILE = ("wall_time_s",)
TOL = 1 + 1e-6


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


def _of(rows, role):
    return [r for r in rows if r["role"] == role]


def test_every_network_is_stored_once(rows):
    (n, d), per_data = TINY.sizes[0], defaultdict(int)
    widths = dense_widths(TINY, n, d)
    dense = len(widths) * TINY.search_restarts
    sparse = len(TINY.methods) * len(TINY.densities) * TINY.sparse_restarts
    built = len(TINY.constructions) - 1 + len(_grouped_ks(n, d, TINY.grouped_ks))
    for r in rows:
        per_data[r["dataset"], r["role"]] += 1
    sparse_weights = TINY.sparse_search_weights or TINY.search_weights
    for data in TINY.datasets:
        searched = dense * len(TINY.search_weights) + sparse * len(sparse_weights)
        assert per_data[data, "search"] == searched
        assert per_data[data, "first-fit"] == per_data[data, "interpolation"] == dense + sparse
        assert per_data[data, "construction"] == built
    assert len(rows) == sum(per_data.values())
    assert len({(r["unit_key"], r["row"]) for r in rows}) == len(rows)
    assert {r["width"] for r in rows if r["method"] == "dense"} == set(widths)


def test_dense_parameter_counts_span_the_law_range(rows):
    dense = [r for r in rows if r["method"] == "dense"]
    for r in dense:
        assert r["p"] == r["kept"] == (r["d"] + 2) * r["width"] + 1
    n, d = TINY.sizes[0]
    ps = sorted({r["p"] for r in dense})
    assert ps[0] < n
    assert ps[-1] >= 3 * n * d
    assert math.log10(ps[-1] / ps[0]) >= 1.5


def test_pruned_counts_are_exact(rows):
    for r in rows:
        if r["role"] == "construction" or r["method"] == "dense":
            continue
        prunable = r["d"] * r["width"] + r["width"]
        assert r["prunable"] == prunable
        keep = prunable - math.ceil((1 - r["density"]) * prunable - 1e-9)
        assert r["kept_weights"] == keep
        assert r["kept"] == keep + r["width"] + 1


def test_one_chosen_fit_per_group_has_the_smallest_certified_bound(rows):
    groups = defaultdict(list)
    for r in _of(rows, "search"):
        groups[r["n"], r["d"], r["dataset"], r["method"], r["density"], r["width"]].append(r)
    n_chosen = 0
    for members in groups.values():
        dense = members[0]["method"] == "dense"
        weights = (
            TINY.search_weights if dense else TINY.sparse_search_weights or TINY.search_weights
        )
        assert len(members) == len(weights) * (
            TINY.search_restarts if dense else TINY.sparse_restarts
        )
        fits = [r for r in members if r["fit_below_noise"] and r["lip_upper"] is not None]
        chosen = [r for r in members if r["chosen"]]
        assert len(chosen) == (1 if fits else 0)
        if chosen:
            (best,) = chosen
            assert best["fit_below_noise"]
            assert best["lip_upper"] == min(r["lip_upper"] for r in fits)
        n_chosen += len(chosen)
    assert n_chosen >= len(groups) // 2  # the search fits below the noise in most groups
    assert all(not r["chosen"] for r in rows if r["role"] != "search")


def test_brackets_are_ordered_and_measured_where_they_matter(rows):
    for r in rows:
        if r["method"] == "tensor":  # polynomial: only its own bound and search on the sphere
            assert r["lip_upper_method"] == "tensor-unfolding"
            assert r["lip_lower"] is None
            assert r["lip_sdp"] is None
            assert r["lip_support"] <= r["lip_certified"] * TOL
            continue
        full = r["chosen"] or r["role"] != "search"
        uppers = [v for v in (r["lip_upper"], r["lip_sdp"]) if v is not None]
        assert r["lip_certified"] == (min(uppers) if uppers else None)
        assert (r["lip_lower"] is not None) == full
        assert (r["lip_support"] is not None) == full  # sphere data
        if not full:
            assert r["lip_lower_status"] == r["lip_support_status"] == "skipped"
            continue
        assert r["lip_lower"] <= r["lip_certified"] * TOL
        assert r["lip_support"] <= r["lip_certified"] * TOL
        small = r["width"] * r["depth"] <= TINY.sdp_max_neurons
        assert (r["lip_sdp"] is not None) == small
        if small:
            assert r["lip_lower"] <= r["lip_sdp"] * TOL <= r["lip_upper"] * TOL**2
    assert any(r["lip_sdp"] is not None for r in rows)


def test_fits_and_controls_follow_their_rules(rows):
    for r in rows:
        assert r["fit_below_noise"] == (r["train_mse"] <= r["sigma2"] - r["eps"])
    for r in _of(rows, "first-fit"):
        if r["n_steps"] < TINY.control_steps:
            assert r["fit_below_noise"]
    for r in _of(rows, "interpolation"):
        if r["n_steps"] < TINY.control_steps:
            assert r["train_mse"] <= TINY.interpolation_margin
    for r in _of(rows, "search"):
        assert r["n_steps"] == TINY.search_steps
        assert r["search_weight"] in TINY.search_weights + (TINY.sparse_search_weights or ())


def test_constructions_report_their_conditions(rows):
    built = _of(rows, "construction")
    assert {r["method"] for r in built} == set(TINY.constructions)
    for r in built:
        assert r["n_steps"] == 0
        assert (r["stated_lipschitz"] is not None) == r["conditions_hold"]
        if r["method"] == "min-norm-linear":
            assert not r["conditions_hold"]  # n > d: one neuron cannot interpolate
        if r["method"] == "caps" and r["conditions_hold"]:
            assert r["train_mse"] < 1e-12
            assert r["lip_support"] <= r["stated_lipschitz"] * TOL  # 10 sqrt(1 - 0.81)


def test_floors_follow_their_formulas(rows):
    for r in rows:
        n, d, p, kept, eps, delta = r["n"], r["d"], r["p"], r["kept"], r["eps"], r["delta"]
        assert r["c"] == pytest.approx(d / (d - 1))  # the sphere
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
        assert r["data_dependent"] == (r["method"] == "snip")
        info = log_binom if r["data_dependent"] else 0.0
        assert r["mask_info_bits"] == pytest.approx(info, abs=1e-9)
        assert r["p_eff_informal"] == pytest.approx(kept + info)
        p_eff = info + kept * math.log2(1 + 60 * r["W"] * r["J"] / eps)
        assert r["p_eff"] == pytest.approx(p_eff, rel=1e-10)
        nfp = (
            eps
            / (1152 * math.sqrt(r["c"]))
            * math.sqrt(n * d * delta / (p_eff + delta / 2 * math.log(4 / delta)))
        )
        assert r["bound_nfp"] == pytest.approx(nfp, rel=1e-10)
        log_term = p * math.log(60 * r["W"] * r["J"] / eps) + math.log(4 / delta)
        bs = eps / (512 * math.sqrt(r["c"])) * math.sqrt(n * d / log_term)
        assert r["bound_bs"] == pytest.approx(bs, rel=1e-10)
        assert r["k_condition_bs"] == (8**4 * math.log(8 / delta) <= n * eps**2)


def test_datasets_are_independent_draws(rows):
    by_data = defaultdict(set)
    for r in _of(rows, "construction"):
        by_data[r["dataset"]].add(round(r["lip_certified"], 9))
    first, second = (by_data[k] for k in TINY.datasets)
    assert first.isdisjoint(second)


def test_provenance(rows):
    import torch

    import robustlaw

    for r in rows:
        assert r["package_version"] == robustlaw.__version__
        assert r["torch_version"] == torch.__version__
        assert r["device"] == "cpu"
        assert r["dtype"] == ("float64" if r["role"] == "construction" else TINY.dtype)
        assert r["inputs"] == "sphere"


def test_demo_resumes_the_store_and_draws_every_figure(local_store, tmp_path, capsys):
    """`robustlaw demo` on a folder holding the tiny results: nothing reruns, all is drawn."""
    out = tmp_path / "demo"
    out.mkdir()
    shutil.copy(local_store, out / "results.sqlite")
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "L_BS" in text  # the bounds table comes first
    assert f"0 work units run, {len(EXP.expand(TINY))} already stored" in text
    assert "contradicts" in text
    assert "the law predicts about -0.5" in text
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


def _assert_same_table(got, want):
    """Equal rows; floats to 1e-12 relative. Ray workers run LAPACK single-threaded
    (``OMP_NUM_THREADS=1``), which can change the last bit of an SDP solve."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-12, abs=0), key
            else:
                assert g[key] == value, key


@pytest.mark.timeout(300)
def test_ray_executor_gives_the_local_table(ray_runtime, rows, tmp_path):
    path = tmp_path / "ray.sqlite"
    summary = run(
        "lor-scaling", "tiny", store=path, device="cpu", executor="ray", threads=1, progress=False
    )
    assert (summary.executor, summary.n_run) == ("ray", len(EXP.expand(TINY)))
    _assert_same_table(_strip(load(path, "lor-scaling", as_frame=False)), _strip(rows))
    assert ray_runtime.is_initialized()  # a runtime the executor did not start is left running
