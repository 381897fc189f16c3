"""Built-in tasks: they train, are twice differentiable, deterministic and movable."""

import math

import pytest
import torch

from dsr_l2o.tasks import VALIDATION_TASKS, get_task, is_task, list_tasks
from dsr_l2o.tasks.networks import mlp_task

NAMES = [name for name, _ in list_tasks()]


def _leaf(params):
    return [p.clone().requires_grad_() for p in params]


@pytest.mark.parametrize("name", NAMES)
def test_adam_decreases_loss(name):
    task = get_task(name)
    assert is_task(task) and 100 <= task.steps <= 300
    params = _leaf(task.init(0))
    start = task.loss(params, 0).item()
    opt = torch.optim.Adam(params, lr=0.02)
    for step in range(20):
        opt.zero_grad()
        task.loss(params, step).backward()
        opt.step()
    end = task.loss(params, 0).item()
    assert math.isfinite(end) and end < 0.8 * start


@pytest.mark.parametrize("name", NAMES)
def test_meta_gradient_through_unrolled_sgd(name):
    task = get_task(name)
    params = task.init(1)

    def unrolled(lr, create_graph=True):
        current = _leaf(params)
        for step in range(2):
            grads = torch.autograd.grad(task.loss(current, step), current, create_graph=create_graph)
            current = [p - lr * g for p, g in zip(current, grads)]
        return task.loss(current, 2)

    lr = torch.tensor(0.01, requires_grad=True)
    (meta_grad,) = torch.autograd.grad(unrolled(lr), lr)
    assert torch.isfinite(meta_grad) and meta_grad != 0
    h = 2e-4
    with torch.enable_grad():
        numeric = (unrolled(torch.tensor(0.01 + h), False)
                   - unrolled(torch.tensor(0.01 - h), False)) / (2 * h)
    assert meta_grad.item() == pytest.approx(numeric.item(), rel=0.05, abs=1e-3)


def test_meta_gradient_needs_second_order_terms():
    task = get_task("mlp_digits_tanh")
    params = task.init(0)

    def meta_grad(create_graph):
        lr = torch.tensor(0.5, requires_grad=True)
        current = _leaf(params)
        for step in range(3):
            grads = torch.autograd.grad(task.loss(current, step), current, create_graph=create_graph)
            current = [p - lr * g for p, g in zip(current, grads)]
        return float(torch.autograd.grad(task.loss(current, 3), lr)[0])

    assert abs(meta_grad(True) - meta_grad(False)) > 1e-4 * abs(meta_grad(True))


@pytest.mark.parametrize("name", NAMES)
def test_init_is_deterministic_in_seed(name):
    task = get_task(name)
    a, b, c = task.init(3), get_task(name).init(3), task.init(4)
    assert all(x.requires_grad is False for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_pure_and_repeatable(name):
    task = get_task(name)
    params = task.init(0)
    copies = [p.clone() for p in params]
    first = task.loss(params, 7)
    assert first.dim() == 0 and torch.equal(first, get_task(name).loss(params, 7))
    assert torch.equal(first, task.loss(params, 7))
    assert all(torch.equal(p, c) for p, c in zip(params, copies))


def test_minibatches_follow_seed_and_step():
    a = mlp_task("a", "digits", (16,), "tanh", seed=5)
    b = mlp_task("b", "digits", (16,), "tanh", seed=5)
    c = mlp_task("c", "digits", (16,), "tanh", seed=6)
    params = a.init(0)
    assert torch.equal(a.loss(params, 3), b.loss(params, 3))
    assert not torch.equal(a.loss(params, 3), a.loss(params, 4))
    assert not torch.equal(a.loss(params, 3), c.loss(params, 3))
    assert torch.equal(a.loss(params, 3), a.loss(params, 3 + 1024))


def test_noisy_quadratic_has_noise_and_exact_heldout():
    task = get_task("noisy_quadratic")
    params = task.init(0)
    assert not torch.equal(task.loss(params, 0), task.loss(params, 1))
    clean = get_task("quadratic_wellcond")
    assert torch.equal(clean.loss(params, 0), clean.loss(params, 1))
    assert set(task.heldout(params)) == {"test_loss"}


@pytest.mark.parametrize("name", ["mlp_digits_relu", "logreg_cancer", "mlp_diabetes"])
def test_heldout_reports_test_metrics(name):
    task = get_task(name)
    params = _leaf(task.init(0))
    result = task.heldout(params)
    assert math.isfinite(result["test_loss"])
    if name != "mlp_diabetes":
        assert 0.0 <= result["test_accuracy"] <= 1.0
    else:
        assert "test_accuracy" not in result


@pytest.mark.parametrize("name", ["noisy_quadratic", "rosenbrock_2d", "cnn_digits"])
def test_to_moves_data(name):
    task = get_task(name)
    same = task.to("cpu")
    params = task.init(0)
    assert torch.equal(same.loss(params, 2), task.loss(params, 2))
    moved = task.to("meta")
    meta_params = moved.init(0)
    assert all(p.device.type == "meta" for p in meta_params)
    assert moved.loss(meta_params, 2).device.type == "meta"
    assert task.init(0)[0].device.type == "cpu"


def test_validation_tasks_are_builtin():
    assert set(VALIDATION_TASKS) <= set(NAMES)
