"""The task suite: every task trains, seeds vary the data order, and the three sets are disjoint."""

import math

import pytest
import torch

from dsr_l2o.tasks import get_family, get_task, is_task
from dsr_l2o.tasks.describe import describe, overview
from dsr_l2o.tasks.suite import (FAMILY_SEED_MIN, FAMILY_TEXT_FILES, SUITE_TEST, SUITE_TEST_CONFIGS,
                                 SUITE_VALIDATION, SUITE_VALIDATION_CONFIGS)
from dsr_l2o.tasks.suite_build import KINDS
from dsr_l2o.tasks.suite_data import parse_source

FIXED = {**SUITE_VALIDATION_CONFIGS, **SUITE_TEST_CONFIGS}
FAMILY_SAMPLES = 150


def _leaf(params):
    return [p.clone().requires_grad_() for p in params]


@pytest.mark.parametrize("name", SUITE_VALIDATION + SUITE_TEST)
def test_suite_task_is_small_and_trains(name):
    task = get_task(name)
    assert is_task(task) and 100 <= task.steps <= 300 and task.config == FIXED[name]
    params = _leaf(task.init(0))
    assert sum(p.numel() for p in params) <= 5000
    mean_loss = lambda: sum(task.loss(params, k).item() for k in range(4)) / 4  # noqa: E731
    start = mean_loss()
    opt = torch.optim.Adam(params, lr=0.02)
    for step in range(30):
        opt.zero_grad()
        task.loss(params, step).backward()
        opt.step()
    assert math.isfinite(mean_loss()) and mean_loss() < 0.95 * start


@pytest.mark.parametrize("name", ["val_attention", "test_deep_mlp", "val_noisy_quadratic"])
def test_with_seed_changes_the_data_order_only(name):
    task = get_task(name)
    other = task.with_seed(7)
    params = task.init(0)
    assert other.seed == 7 and task.seed == 0
    assert not torch.equal(task.loss(params, 0), other.loss(params, 0))
    assert torch.equal(task.with_seed(0).loss(params, 3), task.loss(params, 3))
    if hasattr(task, "heldout"):
        assert task.heldout(params) == other.heldout(params)


def test_every_set_has_every_kind():
    for configs in (SUITE_VALIDATION_CONFIGS, SUITE_TEST_CONFIGS):
        assert sorted(c.kind for c in configs.values()) == sorted(KINDS)
    kinds = {get_family("suite").sample(seed).config.kind for seed in range(80)}
    assert kinds == set(KINDS)


def test_validation_and_test_are_disjoint():
    val = {c.identity for c in SUITE_VALIDATION_CONFIGS.values()}
    test = {c.identity for c in SUITE_TEST_CONFIGS.values()}
    assert not val & test and len(val) == len(test) == len(KINDS)
    files = lambda cs: {c.source for c in cs.values() if c.kind == "attention"}  # noqa: E731
    assert not files(SUITE_VALIDATION_CONFIGS) & files(SUITE_TEST_CONFIGS)


def test_no_sampled_family_task_equals_a_validation_or_test_configuration():
    fixed = {c.identity for c in FIXED.values()}
    fixed_sources = {c.source for c in FIXED.values() if c.kind not in ("cnn", "valley")}
    by_kind = {}
    for c in FIXED.values():
        by_kind.setdefault(c.kind, set()).add(tuple(c.arch))
    family = get_family("suite")
    for seed in range(FAMILY_SAMPLES):
        config = family.sample(seed).config
        assert config.identity not in fixed, (seed, config)
        if config.kind == "attention":
            assert config.source in FAMILY_TEXT_FILES and config.source not in fixed_sources
        elif config.kind in ("cnn", "valley"):
            assert tuple(config.arch) not in by_kind[config.kind]
        elif "quadratic" in config.kind:
            assert int(config.source.partition(":")[2]) >= FAMILY_SEED_MIN
            assert config.arch[0] not in {c.arch[0] for c in FIXED.values() if "quadratic" in c.kind}
        else:
            generator, data_seed = parse_source(config.source)
            assert data_seed is not None and data_seed >= FAMILY_SEED_MIN
            assert config.source not in fixed_sources


def test_family_is_deterministic_and_listed():
    a, b = get_family("suite").sample(5), get_family("suite").sample(5)
    assert a.name == b.name and a.seed == b.seed and a.config == b.config
    text = overview()
    for name in SUITE_VALIDATION + SUITE_TEST:
        assert name in text
    assert "Suite test tasks (report only" in text and "suite " in text
    assert "used only to report" in describe("test_cnn")
