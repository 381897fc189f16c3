"""Small architectures for the data tasks and a helper that pairs one with a dataset."""

from __future__ import annotations

from torch import nn

from ..errors import TaskError
from .data import load_dataset
from .module_task import ModuleTask

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
               "gelu": nn.GELU}


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> nn.Sequential:
    """A fully connected network ``n_in -> hidden... -> n_out``."""
    if activation not in ACTIVATIONS:
        raise TaskError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    layers, width = [], n_in
    for size in hidden:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def digits_cnn(channels: tuple[int, int] = (8, 16)) -> nn.Sequential:
    """A two-layer convolutional net for the 8x8 digits given as 64 flat features."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(4 * c2, 10))


def dataset_task(name: str, dataset: str, model, *, batch_size: int = 128, steps: int = 200,
                 seed: int = 0, description: str = "") -> ModuleTask:
    """A :class:`ModuleTask` on a bundled dataset; ``model(n_features, n_outputs)`` builds the net."""
    data = load_dataset(dataset)
    module = model(data.n_features, data.n_classes or 1)
    return ModuleTask(name, module, data.x_train, data.y_train, x_test=data.x_test,
                      y_test=data.y_test, batch_size=batch_size, steps=steps, seed=seed,
                      description=description)


def logreg_task(name: str, dataset: str, **kw) -> ModuleTask:
    """(Multinomial) logistic regression on a bundled classification dataset."""
    return dataset_task(name, dataset, lambda n_in, n_out: nn.Linear(n_in, n_out), **kw)


def mlp_task(name: str, dataset: str, hidden: tuple[int, ...], activation: str, **kw) -> ModuleTask:
    """An MLP on a bundled dataset (cross-entropy or, for regression, mean squared error)."""
    return dataset_task(name, dataset,
                        lambda n_in, n_out: mlp(n_in, hidden, n_out, activation), **kw)
