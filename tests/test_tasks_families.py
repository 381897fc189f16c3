"""Task families: deterministic sampling, mixtures, and separation from the validation tasks."""

import pytest
import torch

from dsr_l2o.errors import TaskError
from dsr_l2o.tasks import (TRAINING_FAMILY, VALIDATION_TASKS, TaskFamily, get_family, is_task,
                           list_families)

FAMILIES = [name for name, _ in list_families()]


@pytest.mark.parametrize("name", FAMILIES)
def test_sampling_is_deterministic(name):
    family = get_family(name)
    assert isinstance(family, TaskFamily) and family.description
    a, b = family.sample(11), get_family(name).sample(11)
    assert is_task(a) and a.name == b.name and a.seed == b.seed
    params = a.init(0)
    assert torch.equal(a.loss(params, 5), b.loss(params, 5))
    assert len({family.sample(seed).name for seed in range(8)}) > 1


@pytest.mark.parametrize("name", FAMILIES)
def test_sampled_task_trains(name):
    task = get_family(name).sample(3)
    params = [p.clone().requires_grad_() for p in task.init(0)]
    start = task.loss(params, 0).item()
    opt = torch.optim.Adam(params, lr=0.02)
    for step in range(15):
        opt.zero_grad()
        task.loss(params, step).backward()
        opt.step()
    assert task.loss(params, 0).item() < start


def test_mixture_by_plus_and_list():
    mix = get_family("quadratics+logreg")
    assert mix.name == "quadratics+logreg"
    kinds = {mix.sample(seed).name.split("-")[0] for seed in range(20)}
    assert kinds == {"quadratics", "logreg"}
    assert get_family(["quadratics", "logreg"]).sample(4).name == mix.sample(4).name
    mixed = {get_family(TRAINING_FAMILY).sample(seed).name.split("-")[0] for seed in range(40)}
    assert mixed == {"quadratics", "mlp_digits", "logreg", "rosenbrock"}


def test_families_never_sample_validation_configurations():
    for seed in range(60):
        q = get_family("quadratics").sample(seed)
        assert q.dim != 20 and q.condition <= 1e3 and q.noise <= 0.3
        r = get_family("rosenbrock").sample(seed)
        assert r.dim >= 3 and r.curvature <= 50
        m = get_family("mlp_digits").sample(seed)
        assert m.module[0].out_features != 32
        assert "breast_cancer" not in get_family("logreg").sample(seed).name
    assert "cnn_digits" in VALIDATION_TASKS


def test_unknown_family_and_bad_seed():
    with pytest.raises(TaskError, match="known families: quadratics"):
        get_family("quadratics+nope")
    with pytest.raises(TaskError, match="non-negative integer"):
        get_family("logreg").sample(-1)
