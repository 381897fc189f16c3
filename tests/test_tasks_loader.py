"""``module:attr`` task specs and built-in name errors."""

import textwrap

import pytest
import torch

from dsr_l2o.errors import TaskError
from dsr_l2o.tasks import get_task

USER_MODULE = '''
import torch
from dsr_l2o.tasks import ModuleTask


class Line:
    name, steps, seed = "line", 50, 0

    def init(self, seed):
        return [torch.zeros(2)]

    def loss(self, params, step):
        w = params[0]
        return ((w[0] * 3.0 + w[1] - 7.0) ** 2)

    def to(self, device):
        return self


line = Line()


def make_module_task():
    x = torch.linspace(-1, 1, 40).unsqueeze(1)
    return ModuleTask("user_fit", torch.nn.Linear(1, 1), x, 2 * x[:, 0] + 1, batch_size=8)


def not_a_factory():
    return 42


def broken_factory():
    raise ValueError("boom")


forty_two = 42
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch, request):
    name = f"user_tasks_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "user_broken_import.py").write_text("raise RuntimeError('bad module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_loads_task_object_class_and_factory(user_module):
    task = get_task(f"{user_module}:line")
    assert task.name == "line" and task.loss(task.init(0), 0).item() == 49.0
    assert get_task(f"{user_module}:Line").name == "line"
    fit = get_task(f"{user_module}:make_module_task")
    params = [p.requires_grad_() for p in fit.init(0)]
    opt = torch.optim.Adam(params, lr=0.05)
    start = fit.loss(params, 0).item()
    for step in range(40):
        opt.zero_grad()
        fit.loss(params, step).backward()
        opt.step()
    assert fit.loss(params, 0).item() < 0.5 * start


@pytest.mark.parametrize("attr, message", [
    ("nothing_here", "has no attribute 'nothing_here'"),
    ("forty_two", "int object is not a task"),
    ("not_a_factory", "int object is not a task"),
    ("broken_factory", "raised ValueError: boom"),
])
def test_bad_attributes(user_module, attr, message):
    with pytest.raises(TaskError, match=message) as info:
        get_task(f"{user_module}:{attr}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec, message", [
    ("a:b:c", "bad task spec"),
    ("1mod:x", "bad task spec"),
    ("mod:", "bad task spec"),
    ("no_such_module_xyz:task", "cannot import module 'no_such_module_xyz'"),
    ("user_broken_import:task", "raised RuntimeError: bad module"),
])
def test_bad_specs(user_module, spec, message):
    with pytest.raises(TaskError, match=message):
        get_task(spec)


def test_unknown_builtin_lists_known_names():
    with pytest.raises(TaskError, match="known tasks: .*mlp_digits_tanh"):
        get_task("mlp_digits_sigmoid")
