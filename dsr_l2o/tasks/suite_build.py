"""Suite task configurations and the factory that builds a task from one.

A :class:`SuiteConfig` names everything that defines a problem; two tasks are the same problem
exactly when their :attr:`SuiteConfig.identity` is equal (batch size, horizon and data order
aside), which is what the disjointness of the suite's sets is checked on.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import TaskError
from .networks import digits_cnn, mlp
from .rosenbrock import RosenbrockTask
from .seeded import SeededModuleTask, SeededQuadraticTask
from .suite_data import suite_dataset
from .text import VOCAB, CausalSelfAttentionLM, char_windows, sequence_loss

KINDS = ("attention", "cnn", "deep_mlp", "wide_mlp", "autoencoder", "regression", "logistic",
         "noisy_quadratic", "illcond_quadratic", "valley")


@dataclass(frozen=True)
class SuiteConfig:
    """One suite problem.

    ``source`` is the data (a dataset source of :mod:`.suite_data`, a standard-library file name
    for ``attention``, ``problem:SEED`` for quadratics, ``-`` for valleys); ``arch`` the sizes
    (hidden widths; ``(width, context, heads)``; ``(c1, c2)`` channels; ``(dim,)``); ``extra`` the
    rest (activation; condition and noise; curvature).
    """

    kind: str
    source: str
    arch: tuple = ()
    extra: tuple = ()
    batch: int = 64
    steps: int = 200

    @property
    def identity(self) -> tuple:
        """What makes two configurations the same problem."""
        return (self.kind, self.source, tuple(self.arch), tuple(self.extra))

    def describe(self) -> str:
        """A one-line description."""
        if self.kind in ("noisy_quadratic", "illcond_quadratic"):
            (dim,), (condition, noise) = self.arch, self.extra
            return (f"{self.kind}: dim {dim}, condition {condition:g}, target noise {noise:g} "
                    f"({self.source}), {self.steps} steps")
        if self.kind == "valley":
            return (f"valley: chained Rosenbrock, dim {self.arch[0]}, curvature {self.extra[0]:g}, "
                    f"{self.steps} steps")
        if self.kind == "attention":
            width, context, heads = self.arch
            arch = f"width {width}, context {context}, {heads} heads"
        elif self.kind == "cnn":
            arch = f"channels {self.arch[0]}-{self.arch[1]}"
        else:
            arch = "hidden " + "-".join(map(str, self.arch)) if self.arch else "linear"
        extra = "".join(f", {x}" for x in self.extra)
        return f"{self.kind} on {self.source}: {arch}{extra}, batch {self.batch}, {self.steps} steps"


def build(name: str, config: SuiteConfig, seed: int = 0, description: str = ""):
    """A fresh task for ``config`` with data order ``seed``; ``task.config`` is ``config``."""
    if config.kind not in KINDS:
        raise TaskError(f"unknown suite task kind {config.kind!r}; known: {', '.join(KINDS)}")
    description = description or config.describe()
    task = _BUILDERS[config.kind](name, config, seed, description)
    task.config = config
    return task


def _module_task(name, module, data, targets, config, seed, description):
    x_train, y_train, x_test, y_test = targets(data)
    return SeededModuleTask(name, module, x_train, y_train, x_test=x_test, y_test=y_test,
                            batch_size=config.batch, steps=config.steps, seed=seed,
                            description=description)


def _labels(data):
    return data.x_train, data.y_train, data.x_test, data.y_test


def _reconstruct(data):
    return data.x_train, data.x_train, data.x_test, data.x_test


def _attention(name, config, seed, description):
    width, context, heads = config.arch
    x_train, y_train, x_test, y_test = char_windows(config.source, context)
    module = CausalSelfAttentionLM(len(VOCAB), width, context, heads)
    return SeededModuleTask(name, module, x_train, y_train, x_test=x_test, y_test=y_test,
                            loss_fn=sequence_loss, batch_size=config.batch, steps=config.steps,
                            seed=seed, description=description)


def _cnn(name, config, seed, description):
    if config.source != "digits":
        raise TaskError(f"suite CNN tasks read the 8x8 digits, not {config.source!r}")
    data = suite_dataset("digits")
    return _module_task(name, digits_cnn(tuple(config.arch)), data, _labels, config, seed, description)


def _network(name, config, seed, description):
    data = suite_dataset(config.source)
    activation = config.extra[0] if config.extra else "tanh"
    module = mlp(data.n_features, tuple(config.arch), data.n_classes or 1, activation)
    return _module_task(name, module, data, _labels, config, seed, description)


def _logistic(name, config, seed, description):
    data = suite_dataset(config.source)
    if not data.n_classes:
        raise TaskError(f"logistic tasks need a classification dataset, not {config.source!r}")
    return _module_task(name, nn.Linear(data.n_features, data.n_classes), data, _labels, config,
                        seed, description)


def _autoencoder(name, config, seed, description):
    data = suite_dataset(config.source)
    module = mlp(data.n_features, tuple(config.arch), data.n_features, config.extra[0])
    return _module_task(name, module, data, _reconstruct, config, seed, description)


def _quadratic(name, config, seed, description):
    (dim,), (condition, noise) = config.arch, config.extra
    problem = int(config.source.partition(":")[2])
    return SeededQuadraticTask(name, dim, condition, noise, steps=config.steps, seed=seed,
                               problem_seed=problem, description=description)


def _valley(name, config, seed, description):
    (dim,), (curvature,) = config.arch, config.extra
    return RosenbrockTask(name, dim, curvature, steps=config.steps, seed=seed, description=description)


_BUILDERS = {"attention": _attention, "cnn": _cnn, "deep_mlp": _network, "wide_mlp": _network,
             "regression": _network, "logistic": _logistic, "autoencoder": _autoencoder,
             "noisy_quadratic": _quadratic, "illcond_quadratic": _quadratic, "valley": _valley}
