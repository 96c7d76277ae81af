"""Optimizers, the fit loop, and the course's two lessons: initialization and normalization."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradprobe import MLP, Normalizer, datasets
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError
from gradprobe.nn.train import Adam, GradientDescent, Momentum


@pytest.fixture(scope="module")
def circles() -> datasets.Split:
    return datasets.circles(n_train=300, n_test=100, noise=0.05, seed=1)


def test_initialization_lesson(circles: datasets.Split) -> None:
    """Zeros never break symmetry; He trains, with the course's budget."""
    X, y = circles.X_train, circles.y_train
    budget = {"epochs": 15_000, "lr": 0.01, "optimizer": "gd"}
    zeros = MLP([2, 10, 5, 1], init="zeros", seed=0)
    history = zeros.fit(X, y, **budget)  # type: ignore[arg-type]
    assert history.epochs == 15_000
    assert zeros.loss(X, y) == pytest.approx(math.log(2), abs=1e-12)
    assert zeros.score(X, y) == 0.5
    hidden = zeros.params["W1"]
    assert np.all(hidden == hidden[0]), "zero init keeps every hidden unit identical"

    he = MLP([2, 10, 5, 1], init="he", seed=0)
    history = he.fit(X, y, **budget)  # type: ignore[arg-type]
    assert he.score(X, y) >= 0.95
    assert history.loss[-1] < 0.3 < history.loss[0]
    assert he.score(circles.X_test, circles.y_test) >= 0.9


def test_normalization_lesson() -> None:
    data = datasets.breast_cancer(seed=0)
    normalized = Normalizer().fit(data.X_train).transform(data.X_train)
    final = {}
    for name, X in (("raw", data.X_train), ("normalized", normalized)):
        net = MLP([30, 10, 5, 1], init="he", seed=0)
        net.fit(X, data.y_train, epochs=500, lr=0.01)
        final[name] = net.loss(X, data.y_train)
    assert final["normalized"] < 0.25
    assert final["normalized"] < final["raw"] / 3


def test_gradient_descent_step_is_exact() -> None:
    params = {"w": np.array([1.0, 2.0])}
    array = params["w"]
    GradientDescent(0.1).step(params, {"w": np.array([10.0, -10.0])})
    np.testing.assert_allclose(params["w"], [0.0, 3.0])
    assert params["w"] is array


def test_momentum_averages_gradients() -> None:
    params = {"w": np.array([0.0])}
    momentum = Momentum(1.0, beta=0.5)
    momentum.step(params, {"w": np.array([2.0])})  # v = 1
    momentum.step(params, {"w": np.array([2.0])})  # v = 1.5
    np.testing.assert_allclose(params["w"], [-2.5])


def test_adam_first_step_has_size_lr() -> None:
    """With bias correction, Adam's first step is lr·sign(g) whatever the gradient's scale."""
    params = {"w": np.array([0.0, 0.0, 0.0])}
    Adam(0.01).step(params, {"w": np.array([1e-3, -50.0, 7.0])})
    np.testing.assert_allclose(params["w"], [-0.01, 0.01, -0.01], rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_every_optimizer_learns(optimizer: str, circles: datasets.Split) -> None:
    net = MLP([2, 8, 1], activation="tanh", seed=0)
    arrays = dict(net.params)
    history = net.fit(
        circles.X_train, circles.y_train, epochs=40, lr=0.05, batch_size=32, optimizer=optimizer
    )
    assert history.loss[-1] < history.loss[0]
    assert all(net.params[name] is arrays[name] for name in arrays)


def test_history_validation_and_callback(circles: datasets.Split) -> None:
    net = MLP([2, 6, 1], dropout=0.2, seed=0).eval()
    seen: list[int] = []

    def stop_after_three(epoch: int, history: object) -> bool:
        seen.append(epoch)
        return epoch == 2

    history = net.fit(
        circles.X_train,
        circles.y_train,
        epochs=10,
        validation_data=(circles.X_test, circles.y_test),
        callback=stop_after_three,
    )
    assert seen == [0, 1, 2] and history.epochs == 3
    assert len(history.metric) == len(history.val_loss) == len(history.val_metric) == 3
    assert history.metric_name == "accuracy"
    assert history.val_loss[-1] == pytest.approx(net.loss(circles.X_test, circles.y_test))
    assert history.to_dict()["loss"] == history.loss
    assert net.training is False


def test_regression_history_uses_r2(rng: np.random.Generator) -> None:
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    net = MLP([3, 8, 1], activation="tanh", output="linear", seed=0)
    history = net.fit(X, y, epochs=200, lr=0.01, optimizer="adam")
    assert history.metric_name == "r2"
    assert history.metric[-1] > 0.9 > history.metric[0]


def test_training_is_reproducible(circles: datasets.Split) -> None:
    runs = [
        MLP([2, 6, 1], dropout=0.3, seed=4).fit(
            circles.X_train, circles.y_train, epochs=5, batch_size=16
        )
        for _ in range(2)
    ]
    assert runs[0].loss == runs[1].loss


def test_divergence_is_reported(circles: datasets.Split) -> None:
    net = MLP([2, 6, 1], activation="linear", output="linear", seed=0)
    with pytest.raises(NonFiniteError, match="lower lr"):
        net.fit(circles.X_train * 1e3, circles.y_train * 1e3, epochs=50, lr=10.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": "sgd"}, InvalidArgumentError, "gd, momentum, adam"),
        ({"optimizer": 3}, InvalidTypeError, "step"),
        ({"lr": 0.0}, InvalidArgumentError, "lr: got 0.0"),
        ({"epochs": -1}, InvalidArgumentError, "epochs"),
        ({"batch_size": 0}, InvalidArgumentError, "batch_size"),
    ],
)
def test_bad_fit_arguments(kwargs: dict[str, object], error: type, match: str) -> None:
    net = MLP([2, 3, 1])
    with pytest.raises(error, match=match):
        net.fit(np.ones((4, 2)), [0, 1, 0, 1], **kwargs)  # type: ignore[arg-type]


def test_fit_tells_progress_every_epoch(progress_log) -> None:  # type: ignore[no-untyped-def]
    X, y, _, _ = datasets.moons(n_train=60, n_test=10, seed=0)
    MLP([2, 6, 1], activation="tanh", seed=0).fit(X, y, epochs=7, lr=0.05, progress=progress_log)
    progress_log.assert_complete(7)
    assert progress_log.calls == [(epoch, 7) for epoch in range(1, 8)]


def test_fit_drives_a_tqdm_bar_and_refuses_other_hooks() -> None:
    import io

    from tqdm import tqdm

    X, y, _, _ = datasets.moons(n_train=40, n_test=10, seed=1)
    bar = tqdm(file=io.StringIO())
    MLP([2, 4, 1], seed=0).fit(X, y, epochs=5, progress=bar)
    assert bar.n == bar.total == 5
    with pytest.raises(InvalidTypeError, match="progress: got int"):
        MLP([2, 4, 1], seed=0).fit(X, y, epochs=5, progress=3)
