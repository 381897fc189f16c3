"""Regression inputs of issue 15 for --resume: a checkpoint, config or metrics file that does not
belong to the run is a one-line error; the run directory is the source of truth; Ctrl-C says how to resume."""

import json
import shutil
import warnings

import pytest
import torch
import yaml

from dsr_l2o.errors import ConfigError, DsrError, ResultError, SearchInterrupted
from dsr_l2o.search import search
from dsr_l2o.search.checkpoint import truncate_metrics
from search_settings import SMALL_GRAMMAR, TINY_SEARCH

GRAMMAR = SMALL_GRAMMAR
TINY = dict(TINY_SEARCH, eval_lrs=[1e-2, 1e-1], eval_steps=20, grow=False)


def _interrupt_at(step):
    def report(event, data):
        if event == "meta_step" and data["step"] + 1 == step:
            raise KeyboardInterrupt

    return report


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """A run directory whose search was interrupted (Ctrl-C) at meta-step 5, checkpointed at 4."""
    root = tmp_path_factory.mktemp("resume")
    (root / "small.yaml").write_text(GRAMMAR)
    with pytest.raises(SearchInterrupted) as info:
        search(root / "small.yaml", out=root / "run", report=_interrupt_at(5), **TINY)
    assert str(info.value) == f"interrupted at meta-step 5; continue with --resume --out {root / 'run'}"
    assert torch.load(root / "run" / "checkpoint.pt", weights_only=True)["meta"]["meta_step"] == 4
    return root


@pytest.fixture
def run(checkpointed, tmp_path):
    shutil.copytree(checkpointed / "run", tmp_path / "run")
    shutil.copy(checkpointed / "small.yaml", tmp_path / "small.yaml")
    return tmp_path / "run"


def _resume_error(run, **flags) -> str:
    with pytest.raises(DsrError) as info:
        search(out=run, resume=True, **flags)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message and len(message) < 400, message
    return message


def _edit(run, change):
    data = torch.load(run / "checkpoint.pt", weights_only=True)
    change(data)
    torch.save(data, run / "checkpoint.pt")


def test_truncated_checkpoint(run):
    raw = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(raw[: len(raw) // 2])
    assert "cannot be read as a torch checkpoint" in _resume_error(run)


def test_empty_checkpoint(run):
    (run / "checkpoint.pt").write_bytes(b"")
    assert "cannot be read as a torch checkpoint" in _resume_error(run)


def test_garbage_checkpoint(run):
    (run / "checkpoint.pt").write_bytes(bytes(range(256)) * 40)
    assert "cannot be read" in _resume_error(run)


def test_json_checkpoint(run):
    (run / "checkpoint.pt").write_text(json.dumps({"rule": {}, "optimizer": {}, "meta": {}}))
    assert "cannot be read" in _resume_error(run)


def test_directory_checkpoint(run):
    (run / "checkpoint.pt").unlink()
    (run / "checkpoint.pt").mkdir()
    assert "is a directory" in _resume_error(run)


def test_wrong_structure_checkpoint(run):
    torch.save([1, 2, 3], run / "checkpoint.pt")
    assert "the checkpoint is a list, not a mapping" in _resume_error(run)


def test_missing_meta(run):
    _edit(run, lambda d: d.pop("meta"))
    assert "lacks meta" in _resume_error(run)


def test_extra_key(run):
    _edit(run, lambda d: d.update(extra=torch.zeros(1)))
    assert "unexpected key(s) extra" in _resume_error(run)


def test_wrong_shape(run):
    def change(data):
        key = next(iter(data["rule"]))
        data["rule"][key] = torch.zeros(7, 3)
    _edit(run, change)
    assert "has shape [7, 3]" in _resume_error(run)


def test_nan_weights(run):
    def change(data):
        key = next(iter(data["rule"]))
        data["rule"][key] = torch.full_like(data["rule"][key], float("nan"))
    _edit(run, change)
    assert "NaN or infinite" in _resume_error(run)


def test_nan_optimizer_state(run):
    def change(data):
        data["optimizer"]["state"][0]["exp_avg_sq"] = -torch.ones_like(data["optimizer"]["state"][0]["exp_avg_sq"])
    _edit(run, change)
    assert "exp_avg_sq holds values below 0" in _resume_error(run)


def test_negative_meta_step(run):
    _edit(run, lambda d: d["meta"].update(meta_step=-4))
    assert "meta.meta_step is -4" in _resume_error(run)


def test_meta_step_past_the_end(run):
    _edit(run, lambda d: d["meta"].update(meta_step=10_000))
    assert "past the search's 8 meta-steps" in _resume_error(run)


def test_flag_contradicting_the_saved_config(run):
    message = _resume_error(run, seed=3)
    assert isinstance(ConfigError(message), ConfigError) and "seed is 0 but --seed 3" in message


def test_fewer_meta_steps_is_refused(run):
    assert "it may only grow" in _resume_error(run, meta_steps=4)


def test_config_file_contradicting_the_saved_config(run, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**TINY, "depth": 3}))
    assert "depth is 2 but --depth 3" in _resume_error(run, config=other)


def test_edited_grammar_is_refused(run, tmp_path):
    edited = tmp_path / "small.yaml"
    edited.write_text(GRAMMAR.replace("[sign]", "[sign, abs]"))
    assert "differs from" in _resume_error(run, grammar=edited)


def test_missing_config_yaml(run):
    (run / "config.yaml").unlink()
    assert "config.yaml: missing" in _resume_error(run)


def test_torn_metrics_tail_is_dropped_with_a_warning(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2, "meta_lo')
    with pytest.warns(RuntimeWarning, match=":3: dropped a torn last line"):
        truncate_metrics(path, 2)
    assert path.read_text() == '{"step": 0}\n{"step": 1}\n'


def test_corrupt_metrics_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ResultError, match=":2: not a metrics record"):
        truncate_metrics(path, 2)


def test_resume_uses_the_saved_settings_and_grammar_and_cleans_temp_files(run, checkpointed, tmp_path):
    (run / ".checkpoint.pt.abcd1234.tmp").write_bytes(b"half")
    (run / "plots").mkdir(exist_ok=True)
    (run / "plots" / ".meta_loss.png.zz_Q9x1a.tmp").write_bytes(b"half")
    (checkpointed / "small.yaml").write_text(GRAMMAR.replace("[sign]", "[sign, abs]"))  # edited after the run
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 5, "meta_')  # torn by a kill
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = search(out=run, resume=True, device="cpu")
    assert result.data["config"]["meta_steps"] == 8 and result.grammar.name == "sign_momentum"
    assert result.grammar.unary == ("sign",)
    assert not list(run.glob(".*.tmp")) and not list((run / "plots").glob(".*.tmp"))
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(8))
