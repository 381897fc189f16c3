"""``dsr-l2o tasks``."""

import pytest
from click.testing import CliRunner

from dsr_l2o.cli import cli, main
from dsr_l2o.errors import TaskError
from dsr_l2o.tasks import list_families, list_tasks


def test_lists_every_task_and_family():
    result = CliRunner().invoke(cli, ["tasks"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name, _ in list_tasks() + list_families():
        assert any(line.split()[0] == name for line in lines[1:])


def test_shows_task_and_family_details():
    result = CliRunner().invoke(cli, ["tasks", "mlp_digits_relu"])
    assert result.exit_code == 0 and "parameters: 2410" in result.output
    assert "validation task" in result.output
    result = CliRunner().invoke(cli, ["tasks", "rosenbrock+quadratics"])
    assert result.exit_code == 0 and "seed 2:" in result.output


def test_unknown_name_is_one_line_error(capsys):
    result = CliRunner().invoke(cli, ["tasks", "nope"])
    assert isinstance(result.exception, TaskError)
    with pytest.raises(SystemExit) as info:
        main(["tasks", "nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown task 'nope'") and err.count("\n") == 1
