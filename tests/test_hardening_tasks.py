"""Regression inputs of issue 15 for user tasks: a broken task is named, never a raw traceback."""

import pytest
import torch

from dsr_l2o.errors import TaskError
from dsr_l2o.evaluation import EvalProtocol, compare, get_baseline
from dsr_l2o.evaluation.protocol import train


class UserTask:
    """A small quadratic whose ``init`` and ``loss`` a test replaces."""

    name, steps, seed = "user_task", 20, 0

    def __init__(self, loss=None, init=None):
        self._loss, self._init = loss, init

    def init(self, seed):
        return self._init(seed) if self._init else [torch.ones(3)]

    def loss(self, params, step):
        return self._loss(params, step) if self._loss else (params[0] ** 2).sum()

    def to(self, device):
        return self


def _error(task) -> str:
    with pytest.raises(TaskError) as info:
        train(get_baseline("adam"), task, 0.01, 0, 5)
    message = str(info.value)
    assert "\n" not in message and message.startswith("task 'user_task'"), message
    return message


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_at_the_start_is_a_broken_task(bad):
    message = _error(UserTask(loss=lambda p, s: (p[0] ** 2).sum() * bad))
    assert "at the initial parameters" in message and "the task is broken" in message


def test_non_finite_start_is_not_reported_as_a_ranking():
    task = UserTask(loss=lambda p, s: (p[0] ** 2).sum() * float("nan"))
    with pytest.raises(TaskError, match="the task is broken"):
        compare([get_baseline("adam"), get_baseline("sgd")], [task], EvalProtocol(lrs=(0.01, 0.1), seeds=(0,), steps=5))


def test_loss_that_raises_names_task_optimizer_lr_and_step():
    def loss(params, step):
        if step == 2:
            raise IndexError("list index out of range")
        return (params[0] ** 2).sum()
    message = _error(UserTask(loss=loss))
    assert "optimizer 'adam' at lr 0.01, step 2: loss raised IndexError" in message


def test_init_that_raises():
    def init(seed):
        raise ValueError("no data")
    assert "init(seed=0) raised ValueError: no data" in _error(UserTask(init=init))


def test_non_scalar_loss():
    assert "shape [3]; it must be a scalar" in _error(UserTask(loss=lambda p, s: p[0] ** 2))


def test_detached_loss():
    assert "detached" in _error(UserTask(loss=lambda p, s: (p[0] ** 2).sum().detach()))


def test_python_float_loss():
    assert "returned a float, not a torch tensor" in _error(UserTask(loss=lambda p, s: 1.5))


def test_empty_parameter_list():
    assert "non-empty list of floating-point tensors" in _error(UserTask(init=lambda seed: []))


def test_divergence_later_is_still_a_diverged_run():
    run = train(get_baseline("sgd"), UserTask(), 100.0, 0, 20)
    assert run.diverged


BROKEN_MODULE = '''
import torch


class Broken:
    name, steps, seed = "broken", 20, 0

    def init(self, seed):
        return [torch.ones(3)]

    def loss(self, params, step):
        return (params[0] ** 2).sum() * float("nan")

    def to(self, device):
        return self


broken = Broken()
'''


def test_search_reports_a_broken_validation_task_not_run_longer(tmp_path, monkeypatch):
    from dsr_l2o.search import search

    (tmp_path / "broken_tasks.py").write_text(BROKEN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TaskError) as info:
        search(out=tmp_path / "run", tasks="quadratics", validation_tasks=["broken_tasks:broken"], meta_steps=2,
               unroll=5, horizon=10, top_k=1, eval_lrs=[0.01], eval_seeds=[0], eval_steps=10, device="cpu",
               grow=False)
    message = str(info.value)
    assert "task 'broken'" in message and "the task is broken" in message and "--meta-steps" not in message
