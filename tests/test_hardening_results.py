"""Regression inputs of issue 15 for result directories: hostile result.json files and report text."""

import json

import pytest

from dsr_l2o.errors import ResultError
from dsr_l2o.export import export_text
from dsr_l2o.export.bundle import read_result
from dsr_l2o.export.markdown import copy_plots
from dsr_l2o.result import load_result
from result_dir_factory import ADAM, make_result_dir


def _result_dir(tmp_path, text: str):
    make_result_dir(tmp_path / "run", *ADAM, evaluate=False)
    (tmp_path / "run" / "result.json").write_text(text)
    return tmp_path / "run"


def _load_error(directory) -> str:
    with pytest.raises(ResultError) as info:
        load_result(directory)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500, message
    return message


def test_lr_with_400_nines(tmp_path):
    run = _result_dir(tmp_path, '{"formula": "g", "lr": ' + "9" * 400 + "}")
    assert "a number with 400 digits" in _load_error(run)


def test_lr_with_5000_digits(tmp_path):
    run = _result_dir(tmp_path, '{"formula": "g", "lr": ' + "1" * 5000 + "}")
    assert "a number with 5000 digits" in _load_error(run)


def test_json_nested_100000_deep(tmp_path):
    run = _result_dir(tmp_path, '{"formula": "g", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nests too deeply" in _load_error(run)


def test_nan_in_result_json(tmp_path):
    run = _result_dir(tmp_path, '{"formula": "g", "lr": NaN}')
    assert "NaN is not a JSON number" in _load_error(run)


def test_huge_but_finite_lr_loads(tmp_path):
    run = _result_dir(tmp_path, '{"formula": "g", "lr": 1e308}')
    assert load_result(run).lr == 1e308


def test_report_escapes_text_it_did_not_write(tmp_path):
    run = make_result_dir(tmp_path / "run", *ADAM, evaluate=False)
    data = json.loads((run / "result.json").read_text())
    data["created"] = "<script>alert(1)</script>"
    data["config"] = {"tasks": "<img src=x onerror=alert(1)>", "note": "[click](javascript:alert(1))"}
    data["candidates"][1]["rejected"] = "<b>bold</b> | split"
    (run / "result.json").write_text(json.dumps(data))
    report = export_text(read_result(run), "markdown")
    assert "<script>" not in report and "<img" not in report and "<b>" not in report
    assert "&lt;script&gt;" in report and "\\[click\\]" in report


def test_symlinked_plot_is_not_exported(tmp_path):
    run = make_result_dir(tmp_path / "run", *ADAM, evaluate=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (run / "plots").mkdir()
    (run / "plots" / "meta_loss.png").symlink_to(secret)
    (run / "plots" / "real.png").write_bytes(b"\x89PNG real")
    bundle = read_result(run)
    assert [p.name for p in bundle.plots] == ["real.png"]
    copies = copy_plots(bundle, tmp_path / "site")
    assert [p.name for p in copies] == ["real.png"]
    assert not (tmp_path / "site" / "meta_loss.png").exists()
    assert (tmp_path / "site" / "real.png").read_bytes() == b"\x89PNG real"
    assert not list((tmp_path / "site").glob(".*.tmp"))


def test_long_formula_that_does_not_parse_is_shortened(tmp_path):
    run = _result_dir(tmp_path, json.dumps({"formula": "g + " + "q" * 9000, "lr": 0.1}))
    message = _load_error(run)
    assert "does not parse" in message and "characters)" in message


def test_softsign_nested_16_deep_in_a_result_is_rejected_quickly(tmp_path):
    import time

    text = "g"
    for _ in range(16):
        text = f"softsign({text})"
    run = _result_dir(tmp_path, json.dumps({"formula": text, "lr": 0.1}))
    start = time.perf_counter()
    assert "once custom operators expand" in _load_error(run)
    assert time.perf_counter() - start < 2
