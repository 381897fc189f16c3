"""End-to-end searches on tiny budgets: custom grammar, result directory, resume after a kill."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from dsr_l2o import load_result, parse_formula
from dsr_l2o.errors import ConfigError, GrammarError
from dsr_l2o.grammar import load_grammar
from dsr_l2o.expr import operators_used, variables
from dsr_l2o.search import search
from search_settings import SMALL_GRAMMAR, TINY_SEARCH, import_what_a_search_imports_later

TINY = dict(TINY_SEARCH, eval_lrs=[1e-3, 1e-2, 1e-1], eval_steps=40, grow_episodes=2, grow_steps=30)


def _tiny_config(path: Path, **extra) -> Path:
    path.write_text(yaml.safe_dump({**TINY, **extra}))
    return path


def test_custom_grammar_search_yields_formula_in_that_grammar(tmp_path):
    grammar = tmp_path / "small.yaml"
    grammar.write_text(SMALL_GRAMMAR)
    events = []
    result = search(load_grammar(grammar), out=tmp_path / "out", **TINY, grow=True,
                    report=lambda *event: events.append(event))  # a Grammar object, as a path or YAML text
    rounds = [data for event, data in events if event == "tasks"]
    assert rounds and rounds[0] == (1, len(TINY["validation_tasks"])) and rounds[-1][0] == rounds[-1][1]
    assert variables(result.formula.expr) <= {"g", "m"}
    assert operators_used(result.formula.expr) <= {"sign", "mul", "add", "neg", "div", "sub"}
    assert {c["stage"] for c in result.data["candidates"]} <= {"relaxation", "grow"}
    assert result.data["grow"]["episodes"] == TINY["grow_episodes"] and result.data["grow"]["ranking"]
    assert isinstance(result.data["relaxation_argmax"], str)
    reparsed = parse_formula(result.data["formula"], result.grammar)
    assert reparsed.text == result.formula.text
    for name in ["config.yaml", "grammar.yaml", "result.json", "checkpoint.pt", "metrics.jsonl",
                 "plots/operator_weights.png", "plots/meta_loss.png"]:
        assert (tmp_path / "out" / name).is_file(), name
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(TINY["meta_steps"]))
    assert yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["grammar"] == str(grammar)
    assert (tmp_path / "out" / "grammar.yaml").read_text() == SMALL_GRAMMAR
    loaded = load_result(tmp_path / "out")
    params = [torch.nn.Parameter(torch.randn(5))]
    opt = loaded.optimizer(params, lr=0.01)
    params[0].grad = torch.ones(5)
    before = params[0].detach().clone()
    opt.step()
    assert not torch.equal(before, params[0].detach())


def test_a_grammar_of_another_type_is_one_line(tmp_path):
    with pytest.raises(GrammarError, match="^a grammar must be a path, YAML text or a Grammar, not int$"):
        search(42, out=tmp_path / "out", **TINY)
    assert not (tmp_path / "out").exists()


def test_existing_result_dir_needs_resume(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text("{}")
    with pytest.raises(ConfigError, match="--resume"):
        search(out=out, **TINY)


def _search_in_a_child(*args) -> multiprocessing.Process:
    """``dsr-l2o search ARGS`` in a forked child process (it inherits this process's imports)."""
    from dsr_l2o.cli import main

    import_what_a_search_imports_later()
    child = multiprocessing.get_context("fork").Process(target=main, args=(["search", *args],))
    child.start()
    return child


KILL_SETTINGS = dict(meta_steps=8, grow=True, eval_steps=30)
"""The config turns the grow stage on, and every run below turns it off with ``--no-grow``."""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The result of a tiny search run to the end (in this process), for the kill-and-resume tests to match."""
    from dsr_l2o.cli import main

    root = tmp_path_factory.mktemp("kill")
    (root / "small.yaml").write_text(SMALL_GRAMMAR)
    config = _tiny_config(root / "tiny.yaml", **KILL_SETTINGS)
    main(["search", str(root / "small.yaml"), "--config", str(config), "--out", str(root / "full"), "--quiet", "--no-grow"])
    return root, config, json.loads((root / "full" / "result.json").read_text())


def test_no_grow_flag_keeps_the_relaxations_candidates_only(uninterrupted):
    _, config, data = uninterrupted
    assert yaml.safe_load(config.read_text())["grow"] is True
    assert data["grow"] is None and data["config"]["grow"] is False
    assert {c["stage"] for c in data["candidates"]} == {"relaxation"}


def _wait_for(condition, timeout=200):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["meta_step", "selection"])
def test_resume_after_kill_matches_uninterrupted_run(uninterrupted, when, tmp_path):
    import random

    root, config, a = uninterrupted
    out = tmp_path / "killed"
    killed = _search_in_a_child(str(root / "small.yaml"), "--config", str(config), "--out", str(out), "--quiet",
                                "--no-grow")
    metrics = out / "metrics.jsonl"
    lines = lambda: len(metrics.read_text().splitlines()) if metrics.exists() else 0  # noqa: E731
    if when == "meta_step":
        at = random.Random().randint(3, KILL_SETTINGS["meta_steps"] - 2)
        _wait_for(lambda: (out / "checkpoint.pt").exists() and lines() >= at)
    else:  # meta-training done: refitting or scoring the candidates
        _wait_for(lambda: lines() >= KILL_SETTINGS["meta_steps"])
        time.sleep(0.3)
    os.kill(killed.pid, signal.SIGKILL)
    killed.join()
    assert not (out / "result.json").exists(), "the run ended before it could be killed"
    with metrics.open("a") as torn:  # what a kill in the middle of a write leaves
        torn.write('{"step": 99, "meta_lo')

    from dsr_l2o.cli import main

    with pytest.warns(RuntimeWarning, match="dropped a torn last line"):
        main(["search", "--out", str(out), "--resume", "--quiet"])  # the kill was real; the resume runs here
    b = json.loads((out / "result.json").read_text())
    for key in ("formula", "lr", "raw_formula", "candidates", "validation"):
        assert a[key] == b[key], key
    assert a["metrics"]["final_meta_loss"] == b["metrics"]["final_meta_loss"]
    steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines()]
    assert steps == list(range(KILL_SETTINGS["meta_steps"]))


def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import threading

    from dsr_l2o.cli import main

    monkeypatch.chdir(tmp_path)
    config = _tiny_config(tmp_path / "tiny.yaml", meta_steps=400, grow=False)

    def press_ctrl_c_after_the_first_checkpoint():
        _wait_for(lambda: (tmp_path / "run" / "checkpoint.pt").exists(), timeout=120)
        os.kill(os.getpid(), signal.SIGINT)

    # A shell's background job starts with SIGINT ignored, and Python then keeps it ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=press_ctrl_c_after_the_first_checkpoint, daemon=True).start()
        with pytest.raises(SystemExit) as info:
            main(["search", "--config", str(config), "--out", "run", "--quiet"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert info.value.code == 130
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("interrupted at meta-step ") and message.endswith("; continue with --resume --out run")
