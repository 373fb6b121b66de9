"""The sparse kernels: products equal dense ones, training equals the dense path, fallbacks.

1. ``sparse_mlp`` (forward, and gradients in inputs, weights and biases) equals the same MLP
   built from dense torch operations, over random shapes, masks, batch sizes and activations.
2. ``train_ensemble`` with ``kernels="sparse"`` equals ``kernels="dense"`` (float64) for every
   optimizer, batching, noise, stopping, loss and activation; pruned weights stay exactly zero;
   batched equals one-by-one; the thread count does not change a bit.
3. ``"auto"`` picks the kernels by density and by what they support; ``"sparse"`` refuses what
   they cannot train, naming why; without a compiler, or with a damaged cached library,
   nothing is lost.
"""

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.empirical.ensemble import ACTIVATIONS, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.modules import init_module_ensemble, small_cnn
from robustlaw.empirical.training import (
    SGD,
    Adam,
    GaussianGradientNoise,
    TrainOptions,
    train,
    train_ensemble,
)
from robustlaw.empirical.training import sparse_kernels as sk
from robustlaw.errors import ValidationError

F64 = torch.float64

pytestmark = pytest.mark.skipif(sk.kernels() is None, reason="no C compiler for the kernels")


def _dense_mlp(x, weights, biases, activation):
    """The reference: unit-major ``x`` through dense ``(K, out, in)`` weights."""
    h = x
    for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.matmul(w, h) + (0 if b is None else b[:, :, None])
        if l < len(weights) - 1:
            h = ACTIVATIONS[activation](h)
    return h


@st.composite
def networks(draw):
    k = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=4))
    batch = draw(st.integers(1, 40))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    return {
        "k": k,
        "sizes": sizes,
        "batch": batch,
        "density": density,
        "seed": seed,
        "shared": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "activation": draw(st.sampled_from(sorted(sk.ACTIVATION_GRADS))),
    }


def _build(net, dtype=F64):
    g = torch.Generator().manual_seed(net["seed"])
    k, sizes = net["k"], net["sizes"]
    shapes = [(k, o, i) for i, o in zip(sizes, sizes[1:], strict=False)]
    masks = [torch.rand(shape, generator=g) < net["density"] for shape in shapes]
    weights = [torch.randn(m.shape, generator=g, dtype=dtype) * m for m in masks]
    biases = [
        torch.randn(k, m.shape[1], generator=g, dtype=dtype) if net["bias"] else None for m in masks
    ]
    shape = (sizes[0], net["batch"]) if net["shared"] else (k, sizes[0], net["batch"])
    x = torch.randn(shape, generator=g, dtype=dtype)
    return masks, weights, biases, x


@settings(max_examples=40)
@given(networks())
def test_sparse_mlp_and_its_gradients_equal_the_dense_network(net):
    masks, weights, biases, x = _build(net)
    layers = [sk.KernelLayer.from_mask(m) for m in masks]
    values = [layer.compress(w).requires_grad_() for layer, w in zip(layers, weights, strict=True)]
    bias_leaves = [None if b is None else b.clone().requires_grad_() for b in biases]
    x_leaf = x.clone().requires_grad_()
    out = sk.sparse_mlp(x_leaf, values, bias_leaves, layers, net["activation"])
    dense_w = [w.clone().requires_grad_() for w in weights]
    dense_b = [None if b is None else b.clone().requires_grad_() for b in biases]
    dense_x = x.clone().requires_grad_()
    expected = _dense_mlp(dense_x, dense_w, dense_b, net["activation"])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    leaves = [x_leaf, *values, *[b for b in bias_leaves if b is not None]]
    ref_leaves = [dense_x, *dense_w, *[b for b in dense_b if b is not None]]
    grads = torch.autograd.grad(out, leaves, upstream)
    ref = torch.autograd.grad(expected, ref_leaves, upstream)
    n = len(layers)
    torch.testing.assert_close(grads[0], ref[0], rtol=1e-10, atol=1e-10)
    for layer, mask, got, want in zip(layers, masks, grads[1 : 1 + n], ref[1 : 1 + n], strict=True):
        torch.testing.assert_close(layer.expand(got), want * mask, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads[1 + n :], ref[1 + n :], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@settings(max_examples=25)
@given(networks())
def test_compress_and_expand_are_inverse_on_masked_weights(net):
    masks, weights, _, _ = _build(net)
    for mask, w in zip(masks, weights, strict=True):
        layer = sk.KernelLayer.from_mask(mask)
        values = layer.compress(w)
        assert values.shape == (mask.shape[0], int(mask.sum(dim=(1, 2)).max()))
        assert torch.equal(layer.expand(values), w)  # pruned entries exactly zero
        assert int((values != 0).sum()) == int((w != 0).sum())  # padding zero


def test_float32_kernels_agree_with_float64_to_single_precision():
    net = {"k": 3, "sizes": [30, 100, 100, 1], "batch": 64, "density": 0.1, "seed": 3}
    net |= {"shared": True, "bias": True, "activation": "relu"}
    masks, weights, biases, x = _build(net)
    layers = [sk.KernelLayer.from_mask(m) for m in masks]
    values = [m.compress(w) for m, w in zip(layers, weights, strict=True)]
    exact = sk.sparse_mlp(x, values, biases, layers, "relu")
    single = sk.sparse_mlp(
        x.float(),
        [v.float() for v in values],
        [b.float() for b in biases],
        layers,
        "relu",
    )
    torch.testing.assert_close(single.double(), exact, rtol=1e-5, atol=1e-5)


SPEC = MLPSpec(layer_sizes=(5, 12, 12, 1))

TRAIN_CASES = {
    "adam": TrainOptions(optimizer=Adam(lr=1e-2), max_steps=60),
    "sgd-momentum-decay": TrainOptions(
        optimizer=SGD(lr=5e-2, momentum=0.9, weight_decay=0.1), max_steps=60
    ),
    "adamw-memorized": TrainOptions(optimizer="adamw", max_steps=300, stopping="memorized"),
    "adam-minibatch-noise": TrainOptions(
        optimizer=Adam(lr=1e-2),
        max_steps=40,
        batch_size=7,
        gradient_noise=GaussianGradientNoise(std=0.3),
    ),
    "sgd-per-member-lr": TrainOptions(optimizer=SGD(lr=(0.01, 0.05, 0.1)), max_steps=50),
}


def _data(n=20, d=5, seed=0, k=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(*((n, d) if k is None else (k, n, d)), generator=g, dtype=F64)
    y = torch.randint(0, 2, X.shape[:-1], generator=g).to(F64) * 2 - 1
    return X, y


def _ens(seeds, spec=SPEC, density=0.3):
    ens = init_mlp_ensemble(spec, seeds=seeds, dtype=F64)
    g = torch.Generator().manual_seed(7)
    masks = {k: torch.rand(v.shape, generator=g) < density for k, v in ens.masks.items()}
    return ens.with_masks(masks)


def _assert_same_training(a, b, atol):
    assert a.record.n_steps.tolist() == b.record.n_steps.tolist()
    for name, p in a.params.items():
        torch.testing.assert_close(p, b.params[name], rtol=0, atol=atol)
    torch.testing.assert_close(
        torch.from_numpy(a.history), torch.from_numpy(b.history), rtol=0, atol=atol
    )


@pytest.mark.parametrize("name", list(TRAIN_CASES))
def test_sparse_training_equals_dense_training(name):
    opts = TRAIN_CASES[name]
    ens = _ens([11, 22, 33])
    X, y = _data()
    dense = train_ensemble(ens, X, y, replace(opts, kernels="dense"))
    sparse = train_ensemble(ens, X, y, replace(opts, kernels="sparse"))
    _assert_same_training(sparse, dense, atol=1e-12)
    for mask_name, mask in ens.masks.items():
        assert torch.all(sparse.params[mask_name][~mask] == 0)


@pytest.mark.parametrize(
    ("spec", "loss", "per_member"),
    [
        (MLPSpec(layer_sizes=(5, 9, 3), activation="tanh"), "cross-entropy", False),
        (MLPSpec(layer_sizes=(5, 9, 9, 1), activation="sigmoid", bias=False), "mse", True),
        (MLPSpec(layer_sizes=(5, 9, 1), activation="identity"), "logistic", False),
    ],
)
def test_sparse_training_equals_dense_for_other_activations_losses_and_data(spec, loss, per_member):
    ens = _ens([1, 2, 3], spec=spec)
    X, y = _data(k=3 if per_member else None)
    if loss == "cross-entropy":
        y = (y > 0).long() + (X[..., 0] > 0).long()
    opts = TrainOptions(optimizer=Adam(lr=1e-2), loss=loss, max_steps=40, batch_size=8)
    dense = train_ensemble(ens, X, y, replace(opts, kernels="dense"))
    sparse = train_ensemble(ens, X, y, replace(opts, kernels="sparse"))
    _assert_same_training(sparse, dense, atol=1e-12)


def test_sparse_training_batched_equals_one_by_one():
    ens = _ens([4, 5, 6])
    X, y = _data()
    opts = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=50, batch_size=6, kernels="sparse")
    together = train_ensemble(ens, X, y, opts)
    for k in range(3):
        member = init_mlp_ensemble(SPEC, seeds=[ens.seeds[k]], dtype=F64)
        member = member.with_masks({n: m[k : k + 1] for n, m in ens.masks.items()})
        alone = train_ensemble(member, X, y, opts)
        for name, p in together.params.items():
            torch.testing.assert_close(p[k], alone.params[name][0], rtol=0, atol=1e-13)


def test_thread_count_does_not_change_a_bit():
    ens = _ens(list(range(7)), spec=MLPSpec(layer_sizes=(5, 40, 40, 1)), density=0.2)
    X, y = _data(n=70)
    opts = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=20, kernels="sparse")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train_ensemble(ens, X, y, opts)
        torch.set_num_threads(3)
        three = train_ensemble(ens, X, y, opts)
    finally:
        torch.set_num_threads(threads)
    for name, p in one.params.items():
        assert torch.equal(p, three.params[name])


@pytest.fixture
def compressed_calls(monkeypatch):
    """How many times training built compressed leaves."""
    calls = []
    original = train.CompressedLeaves

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "CompressedLeaves", spy)
    return calls


@pytest.mark.parametrize(
    ("density", "extra", "expected"),
    [
        (0.1, {}, 1),
        (sk.SPARSE_DENSITY_LIMIT, {}, 1),
        (0.9, {}, 0),
        (0.1, {"penalty": "l2"}, 0),
        (0.1, {"constraint": "spectral-ball"}, 0),
    ],
)
def test_auto_takes_the_kernels_at_low_density_when_they_apply(
    compressed_calls, density, extra, expected
):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(20, 50, 1)), seeds=[0, 1], dtype=F64)
    n_kept = {k: round(density * v[0].numel()) for k, v in ens.masks.items()}
    masks = {}
    for k, v in ens.masks.items():
        flat = torch.zeros(v[0].numel(), dtype=torch.bool)
        flat[: n_kept[k]] = True
        masks[k] = flat.reshape(v[0].shape).expand_as(v).clone()
    X, y = _data(d=20)
    train_ensemble(ens.with_masks(masks), X, y, TrainOptions(max_steps=2, **extra))
    assert len(compressed_calls) == expected


def test_dense_kernels_and_unmasked_ensembles_never_take_the_kernels(compressed_calls):
    X, y = _data()
    train_ensemble(_ens([1]), X, y, TrainOptions(max_steps=2, kernels="dense"))
    unmasked = init_mlp_ensemble(SPEC, seeds=[1], dtype=F64)
    train_ensemble(unmasked, X, y, TrainOptions(max_steps=2))
    assert compressed_calls == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"penalty": "l2"}, "penalty"), ({"constraint": "spectral-ball"}, "constraint")],
)
def test_sparse_refuses_what_the_kernels_cannot_train(extra, message):
    X, y = _data()
    with pytest.raises(ValidationError, match=f"kernels='sparse' cannot be used: .*{message}"):
        train_ensemble(_ens([1]), X, y, TrainOptions(max_steps=2, kernels="sparse", **extra))


def test_sparse_refuses_module_ensembles():
    ens = init_module_ensemble(small_cnn(1, 8, 2, channels=(2, 2)), seeds=[0], example_ndim=3)
    X = torch.randn(4, 1, 8, 8)
    with pytest.raises(ValidationError, match="kernels='sparse' trains MLP ensembles"):
        train_ensemble(ens, X, torch.tensor([0, 1, 0, 1]), TrainOptions(kernels="sparse"))


def test_unknown_kernels_name_is_one_clear_error():
    with pytest.raises(ValidationError, match="kernels must be one of 'auto', 'sparse', 'dense'"):
        TrainOptions(kernels="fast")


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """Kernels built afresh into an empty cache directory; the real build restored after."""
    monkeypatch.setenv("ROBUSTLAW_CACHE_DIR", str(tmp_path))
    sk._build.cache_clear()
    yield tmp_path
    sk._build.cache_clear()


def test_without_a_compiler_auto_trains_dense_and_sparse_says_why(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(sk.shutil, "which", lambda name: None)
    assert sk.kernels() is None
    assert "no C compiler" in sk.kernels_unavailable_reason()
    ens, (X, y) = _ens([1, 2]), _data()
    opts = TrainOptions(max_steps=5)
    auto = train_ensemble(ens, X, y, opts)
    dense = train_ensemble(ens, X, y, replace(opts, kernels="dense"))
    _assert_same_training(auto, dense, atol=0)
    with pytest.raises(ValidationError, match="no C compiler"):
        train_ensemble(ens, X, y, replace(opts, kernels="sparse"))


def test_a_damaged_cached_library_is_rebuilt(fresh_build):
    path = sk.library_path(sk._compiler(), sk.FLAGS[0])
    assert path.parent == fresh_build
    path.write_bytes(b"not a shared library")
    assert sk.kernels() is not None
    assert path.read_bytes()[:4] == b"\x7fELF"
