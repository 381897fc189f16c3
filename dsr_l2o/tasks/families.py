"""Task families for meta-training: each draws sizes, conditioning and seeds from its own
``numpy`` generator keyed by ``(family name, seed)``, so ``sample(seed)`` is deterministic.

The ranges deliberately avoid the configurations of the validation tasks (see
:mod:`dsr_l2o.tasks.registry`): no 20-d quadratics, no 2-d or curvature-100 Rosenbrock, no
hidden size 32, no breast_cancer and no CNN.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import TaskError
from .networks import logreg_task, mlp_task
from .quadratic import QuadraticTask
from .rosenbrock import RosenbrockTask

SAMPLED_STEPS = 200


def _rng(name: str, seed) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TaskError(f"family {name!r}: seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([zlib.crc32(name.encode()), int(seed)])


def _data_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 2**31 - 1))


class SampledFamily:
    """A family defined by ``draw(rng, label) -> Task``."""

    def __init__(self, name: str, description: str, draw):
        self.name, self.description, self._draw = name, description, draw

    def sample(self, seed: int):
        """The task of ``seed`` (deterministic)."""
        return self._draw(_rng(self.name, seed), f"{self.name}-{seed}")

    def __repr__(self) -> str:
        return f"SampledFamily({self.name!r})"


class SingleTaskFamily:
    """A family whose every draw is one task (a user's task where a family is asked for); the
    seed still varies the initial parameters, which callers draw with ``init(seed)``."""

    def __init__(self, task):
        self.task = task
        self.name = getattr(task, "name", "task")
        self.description = f"the task {self.name} at every draw"

    def sample(self, seed: int):
        """The task itself."""
        return self.task

    def __repr__(self) -> str:
        return f"SingleTaskFamily({self.name!r})"


class MixtureFamily:
    """Picks one of ``components`` uniformly (from ``seed``) and samples it with ``seed``."""

    def __init__(self, name: str, components: list, description: str = ""):
        if not components:
            raise TaskError("a mixture family needs at least one component")
        self.name, self.components = name, list(components)
        self.description = description or "uniform mixture of " + ", ".join(c.name for c in components)

    def sample(self, seed: int):
        """The task of ``seed`` from a uniformly chosen component (deterministic)."""
        index = int(_rng(self.name, seed).integers(len(self.components)))
        return self.components[index].sample(seed)

    def __repr__(self) -> str:
        return f"MixtureFamily({self.name!r}, {[c.name for c in self.components]})"


QUADRATIC_DIMS = tuple(d for d in range(5, 41) if d != 20)


def _quadratic_sampler(log10_condition: tuple[float, float]):
    """Draws quadratics of condition 10**uniform(*log10_condition), half with target noise."""

    def draw(rng, label):
        dim = int(rng.choice(QUADRATIC_DIMS))
        condition = float(10 ** rng.uniform(*log10_condition))
        noise = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.05, 0.3))
        return QuadraticTask(f"{label}(dim={dim},cond={condition:.3g},noise={noise:.2g})", dim,
                             condition, noise, steps=SAMPLED_STEPS, seed=_data_seed(rng))

    return draw


MLP_HIDDEN = (8, 16, 24, 48, 64)
MLP_ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus")
BATCH_SIZES = (32, 64, 128)


def _mlp_digits(rng, label):
    hidden = int(rng.choice(MLP_HIDDEN))
    activation = str(rng.choice(MLP_ACTIVATIONS))
    batch = int(rng.choice(BATCH_SIZES))
    return mlp_task(f"{label}(hidden={hidden},{activation},batch={batch})", "digits", (hidden,),
                    activation, batch_size=batch, steps=SAMPLED_STEPS, seed=_data_seed(rng))


LOGREG_DATASETS = ("wine", "iris", "digits")


def _logreg(rng, label):
    dataset = str(rng.choice(LOGREG_DATASETS))
    batch = int(rng.choice(BATCH_SIZES))
    return logreg_task(f"{label}({dataset},batch={batch})", dataset, batch_size=batch,
                       steps=SAMPLED_STEPS, seed=_data_seed(rng))


def _rosenbrock(rng, label):
    dim = int(rng.integers(3, 9))
    curvature = float(10 ** rng.uniform(np.log10(5.0), np.log10(50.0)))
    return RosenbrockTask(f"{label}(dim={dim},curvature={curvature:.3g})", dim, curvature,
                          steps=SAMPLED_STEPS, seed=_data_seed(rng))


def builtin_families() -> dict:
    """Fresh instances of the built-in families, ``name -> family``."""
    basic = [
        SampledFamily("quadratics", "random quadratics: dim 5-40 (not 20), condition 1-1e3, "
                      "half with target noise 0.05-0.3", _quadratic_sampler((0.0, 3.0))),
        SampledFamily("mlp_digits", "one-hidden-layer MLPs on digits: hidden 8-64 (not 32), "
                      "tanh/relu/sigmoid/softplus, batch 32-128", _mlp_digits),
        SampledFamily("logreg", "logistic regression on wine, iris or digits, batch 32-128",
                      _logreg),
        SampledFamily("rosenbrock", "chained Rosenbrock: dim 3-8, curvature 5-50", _rosenbrock),
    ]
    families = {f.name: f for f in basic}
    families["hard_quadratics"] = SampledFamily(
        "hard_quadratics", "ill-conditioned quadratics: dim 5-40 (not 20), condition 1e2-1e4, "
        "half with target noise 0.05-0.3 (the search's grow stage ranks rules on these)",
        _quadratic_sampler((2.0, 4.0)))
    families["mixed"] = MixtureFamily("mixed", basic, "uniform mixture of quadratics, mlp_digits, "
                                      "logreg and rosenbrock")
    from .suite import suite_families

    families.update(suite_families())
    return families
