import numpy as np
import pytest


def law_rows(slope=-0.5, noise=0.05, seed=0):
    """Synthetic lor-scaling rows whose Lipschitz constants follow (n d)^(1/2) kept^slope."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, d in ((64, 16), (128, 16)):
        for method, densities, kept0 in (
            ("dense", (1.0,), None),
            ("random", (0.5, 0.25, 0.1), 4000),
        ):
            widths = (8, 16, 32, 64) if method == "dense" else (64,)
            for width in widths:
                for density in densities:
                    for seed_ in (0, 1, 2):
                        kept = (
                            (width * width * 2 + 17 * width) if kept0 is None else kept0 * density
                        )
                        lip = np.sqrt(n * d) * kept**slope * np.exp(noise * rng.standard_normal())
                        rows.append(
                            {
                                "method": method, "density": density, "width": width, "seed": seed_,
                                "n": n, "d": d, "kept": kept, "p_eff": 50.0 * kept,
                                "lip_lower": lip, "lip_upper": 3 * lip,
                                "bound_bs": 1e-4, "bound_nfp": 1e-5 * np.sqrt(n * d / kept),
                                "fit_below_noise": True,
                            }
                        )  # fmt: skip
    return rows


@pytest.fixture
def rows():
    return law_rows()


@pytest.fixture
def make_rows():
    """The row generator, for tests that need other slopes."""
    return law_rows
