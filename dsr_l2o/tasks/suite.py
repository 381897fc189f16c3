"""The task suite: problems of the kinds users train, in three disjoint sets.

* **family** ``suite`` (meta-training): a uniform mixture of one sampled family per kind
  (``suite_attention``, ``suite_cnn``, ...), deterministic in the seed.
* :data:`SUITE_VALIDATION` (``val_*``): a fixed list used to *select* (rules, checkpoints,
  hyper-parameters).
* :data:`SUITE_TEST` (``test_*``): a fixed list used *only to report*.

Each set holds a one-block causal self-attention character model, a CNN, a deep and a wide MLP,
an autoencoder, a regression, a logistic model, a noisy and an ill-conditioned quadratic and a
curved valley (chained Rosenbrock). Why they are disjoint (checked in ``tests/test_tasks_suite.py``):

* text: validation reads ``textwrap.py``, test ``functools.py``, the family only the files of
  :data:`FAMILY_TEXT_FILES` (neither of those two);
* tabular data: validation uses ``wine``, ``breast_cancer``, ``diabetes``, ``digits`` (autoencoder)
  and ``moons:101``; test uses ``iris``, ``digits`` (deep MLP), ``breast_cancer`` (autoencoder),
  ``circles:201`` and ``friedman1:201``; the family only generated data at generator seeds
  >= :data:`FAMILY_SEED_MIN` (the fixed sets use seeds below 1000); where validation and test
  share a bundled dataset the model kind differs;
* CNNs (all on digits): channels (4, 8) for validation, (6, 12) for test, the family draws from
  :data:`FAMILY_CNN_CHANNELS`, which holds neither;
* quadratics: validation dims 24 and 12, test 32 and 8, problem seeds below 1000; the family
  never draws those dims and uses problem seeds >= 1000;
* valleys: validation dim 6, test dim 12; the family draws dims 3-9 except 6.

Data seeds vary the data order: every task offers ``with_seed`` (see
:func:`dsr_l2o.evaluation.protocol.with_data_seed`), and ``init(seed)`` varies the start.
"""

from __future__ import annotations

import numpy as np

from .families import MixtureFamily, SampledFamily, _data_seed
from .suite_build import KINDS, SuiteConfig, build

C = SuiteConfig

SUITE_VALIDATION_CONFIGS: dict[str, SuiteConfig] = {
    "val_attention": C("attention", "textwrap.py", (16, 16, 2), batch=16, steps=100),
    "val_cnn": C("cnn", "digits", (4, 8), batch=64, steps=150),
    "val_deep_mlp": C("deep_mlp", "breast_cancer", (16, 16, 16, 16), ("tanh",), batch=64),
    "val_wide_mlp": C("wide_mlp", "moons:101", (256,), ("relu",), batch=64),
    "val_autoencoder": C("autoencoder", "digits", (16, 6, 16), ("tanh",), batch=64),
    "val_regression": C("regression", "diabetes", (24,), ("relu",), batch=64),
    "val_logistic": C("logistic", "wine", batch=32),
    "val_noisy_quadratic": C("noisy_quadratic", "problem:101", (24,), (300.0, 0.3)),
    "val_illcond_quadratic": C("illcond_quadratic", "problem:102", (12,), (1e5, 0.0)),
    "val_valley": C("valley", "-", (6,), (100.0,), steps=300),
}

SUITE_TEST_CONFIGS: dict[str, SuiteConfig] = {
    "test_attention": C("attention", "functools.py", (16, 16, 2), batch=16, steps=100),
    "test_cnn": C("cnn", "digits", (6, 12), batch=64, steps=150),
    "test_deep_mlp": C("deep_mlp", "digits", (20, 20, 20, 20), ("relu",), batch=64),
    "test_wide_mlp": C("wide_mlp", "circles:201", (384,), ("tanh",), batch=64),
    "test_autoencoder": C("autoencoder", "breast_cancer", (12, 4, 12), ("tanh",), batch=64),
    "test_regression": C("regression", "friedman1:201", (32,), ("tanh",), batch=64),
    "test_logistic": C("logistic", "iris", batch=32),
    "test_noisy_quadratic": C("noisy_quadratic", "problem:201", (32,), (1000.0, 0.5)),
    "test_illcond_quadratic": C("illcond_quadratic", "problem:202", (8,), (1e6, 0.0)),
    "test_valley": C("valley", "-", (12,), (100.0,), steps=300),
}

SUITE_VALIDATION = tuple(SUITE_VALIDATION_CONFIGS)
SUITE_TEST = tuple(SUITE_TEST_CONFIGS)
SUITE_CONFIGS = {**SUITE_VALIDATION_CONFIGS, **SUITE_TEST_CONFIGS}

FAMILY_SEED_MIN = 1000
FAMILY_TEXT_FILES = ("heapq.py", "shlex.py", "glob.py", "calendar.py", "string.py", "queue.py",
                     "contextlib.py", "fractions.py", "pprint.py", "sched.py", "base64.py",
                     "copy.py", "numbers.py", "reprlib.py", "timeit.py", "fnmatch.py")
FAMILY_CNN_CHANNELS = ((2, 4), (3, 6), (4, 4), (4, 6), (5, 10), (6, 8), (8, 8))
FAMILY_QUADRATIC_DIMS = tuple(d for d in range(5, 41) if d not in (8, 12, 24, 32))
FAMILY_VALLEY_DIMS = (3, 4, 5, 7, 8, 9)


def get_suite_task(name: str, seed: int = 0):
    """A fresh validation or test task of the suite by name."""
    return build(name, SUITE_CONFIGS[name], seed)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _generated(rng, generators) -> str:
    return f"{_pick(rng, generators)}:{int(rng.integers(FAMILY_SEED_MIN, 10**6))}"


def _draw_config(kind: str, rng: np.random.Generator) -> SuiteConfig:
    if kind == "attention":
        width, heads = _pick(rng, ((8, 1), (8, 2), (12, 2), (16, 2), (16, 4)))
        return C(kind, _pick(rng, FAMILY_TEXT_FILES), (width, _pick(rng, (8, 12, 16)), heads),
                 batch=_pick(rng, (8, 16)), steps=100)
    if kind == "cnn":
        return C(kind, "digits", _pick(rng, FAMILY_CNN_CHANNELS), batch=_pick(rng, (32, 64)), steps=150)
    if kind == "deep_mlp":
        depth, width = int(rng.integers(3, 6)), _pick(rng, (8, 12, 16, 20))
        return C(kind, _generated(rng, ("classification", "blobs")), (width,) * depth,
                 (_pick(rng, ("tanh", "relu", "gelu")),), batch=_pick(rng, (32, 64)))
    if kind == "wide_mlp":
        return C(kind, _generated(rng, ("moons", "circles", "blobs")), (_pick(rng, (128, 192, 256, 320)),),
                 (_pick(rng, ("tanh", "relu")),), batch=_pick(rng, (32, 64)))
    if kind == "autoencoder":
        hidden = _pick(rng, (6, 8, 10))
        return C(kind, _generated(rng, ("classification",)), (hidden, _pick(rng, (2, 3, 4)), hidden),
                 (_pick(rng, ("tanh", "gelu")),), batch=_pick(rng, (32, 64)))
    if kind == "regression":
        return C(kind, _generated(rng, ("regression", "friedman1")), _pick(rng, ((), (16,), (24,))),
                 (_pick(rng, ("tanh", "relu")),), batch=_pick(rng, (32, 64)))
    if kind == "logistic":
        return C(kind, _generated(rng, ("classification", "blobs", "moons")), batch=_pick(rng, (32, 64)))
    if kind in ("noisy_quadratic", "illcond_quadratic"):
        noisy = kind == "noisy_quadratic"
        condition = float(f"{10 ** rng.uniform(1.0, 3.5) if noisy else 10 ** rng.uniform(3.0, 6.0):.3g}")
        noise = float(f"{rng.uniform(0.05, 0.6):.2g}") if noisy else 0.0
        problem = f"problem:{int(rng.integers(FAMILY_SEED_MIN, 10**6))}"
        return C(kind, problem, (_pick(rng, FAMILY_QUADRATIC_DIMS),), (condition, noise))
    curvature = float(f"{10 ** rng.uniform(1.0, 2.5):.3g}")
    return C("valley", "-", (_pick(rng, FAMILY_VALLEY_DIMS),), (curvature,), steps=300)


def _sampler(kind: str):
    def draw(rng, label):
        config = _draw_config(kind, rng)
        return build(f"{label}({config.describe()})", config, seed=_data_seed(rng))
    return draw


_FAMILY_TEXT = {
    "attention": "one-block causal self-attention char models on standard-library files",
    "cnn": "CNNs on the 8x8 digits",
    "deep_mlp": "MLPs with 3-5 hidden layers on generated classification data",
    "wide_mlp": "one-hidden-layer MLPs of width 128-320 on generated 2-d/5-d data",
    "autoencoder": "bottleneck autoencoders on generated features",
    "regression": "linear and MLP regression on generated data",
    "logistic": "logistic regression on generated classification data",
    "noisy_quadratic": "quadratics with condition 10-3e3 and target noise 0.05-0.6",
    "illcond_quadratic": "noise-free quadratics with condition 1e3-1e6",
    "valley": "chained Rosenbrock valleys, dim 3-9 (not 6), curvature 10-316",
}


def suite_families() -> dict:
    """The suite's families: one per kind (``suite_<kind>``) and their mixture ``suite``."""
    parts = [SampledFamily(f"suite_{kind}", _FAMILY_TEXT[kind], _sampler(kind)) for kind in KINDS]
    families = {f.name: f for f in parts}
    families["suite"] = MixtureFamily("suite", parts, "meta-training suite: uniform mixture of the "
                                      "suite_* families (disjoint from the val_* and test_* tasks)")
    return families
