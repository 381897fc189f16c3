"""Meta-training over 2 gloo processes on localhost gives the one-process result; a dead process
ends the run with one line; a spawned process (the launcher's default) gets the rendezvous;
``dsr-l2o search --nproc 2`` writes one run directory (issue 14)."""

import json
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dsr_l2o.search.distributed import DistributedError
from dsr_l2o.search.launch import launch

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import runs  # noqa: E402
from search_settings import import_what_a_search_imports_later  # noqa: E402
from spawn_target import write_environment_then_fail  # noqa: E402

TINY = dict(tasks="quadratics", unroll=5, horizon=10)
PLANS = {
    "truncated": dict(steps=4, resume_at=2, estimator="truncated_backprop", meta_batch=3, **TINY),
    "population": dict(steps=2, estimator="population", population=6, population_lrs=[0.01, 0.3], **TINY),
}


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_two_processes_give_the_result_of_one(tmp_path):
    import_what_a_search_imports_later()
    launch(2, runs, {"out": str(tmp_path / "two.pt"), "plans": PLANS}, start_method="fork")
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    runs(str(tmp_path / "one.pt"), PLANS)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    for name in PLANS:
        assert (one[name]["world"], two[name]["world"]) == (1, 2)
        _close(one[name]["rule"], two[name]["rule"])
        losses = [[r["meta_loss"] for r in run[name]["records"]] for run in (one, two)]
        assert len(losses[0]) == PLANS[name]["steps"] and None not in losses[0]
        assert losses[1] == pytest.approx(losses[0], rel=1e-6)
        assert [r["skipped"] for r in one[name]["records"]] == [r["skipped"] for r in two[name]["records"]]
    hall, hall_two = one["population"]["hall"], two["population"]["hall"]
    assert hall["texts"] and (hall["texts"], hall["counts"]) == (hall_two["texts"], hall_two["counts"])
    assert hall_two["totals"] == pytest.approx(hall["totals"], rel=1e-6, abs=1e-6)
    moved = [float((one["truncated"]["rule"][k] - v).abs().max()) for k, v in _fresh_rule().items()]
    assert max(moved) > 1e-4  # the relaxation was trained, so the comparison means something


def _fresh_rule() -> dict:
    import dsr_l2o
    from dsr_l2o.search.config import load_config
    from dsr_l2o.search.relaxation import RelaxedRule

    config = load_config()
    torch.manual_seed(config.seed)
    return RelaxedRule(dsr_l2o.load_grammar(), depth=1, init_lr=config.init_lr, init_bias=config.init_bias).state_dict()


def test_a_dead_process_ends_the_run_with_one_line(tmp_path):
    import_what_a_search_imports_later()
    started = time.monotonic()
    plans = {"truncated": dict(steps=6, die_at=1, estimator="truncated_backprop", meta_batch=2, dist_timeout=20, **TINY)}
    with pytest.raises(DistributedError, match=r"^process 1 of 2 exited with status 3; the other processes were stopped"):
        launch(2, runs, {"out": str(tmp_path / "x.pt"), "plans": plans, "timeout": 20}, start_method="fork")
    assert time.monotonic() - started < 45
    assert not (tmp_path / "x.pt").exists()


def test_a_spawned_process_gets_the_rendezvous_and_its_error_ends_the_launch(tmp_path, capfd):
    """The start method ``dsr-l2o search --nproc`` uses: a fresh interpreter, target and keywords pickled."""
    out = tmp_path / "env.json"
    with pytest.raises(DistributedError, match=r"^process 0 of 1 exited with status 2; the other processes were stopped"):
        launch(1, write_environment_then_fail, {"out": str(out)})
    env = json.loads(out.read_text())
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"]) == ("0", "0", "1", "127.0.0.1")
    assert 0 < int(env["MASTER_PORT"]) < 65536
    assert capfd.readouterr().err.strip().splitlines()[-1] == "error: stopped on purpose"


def test_search_with_nproc_writes_one_run_directory(tmp_path, capfd):
    from dsr_l2o.cli.search_cmd import one_process

    import_what_a_search_imports_later()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(dict(
        TINY, depth=1, meta_steps=4, meta_batch=2, population=4, population_lrs=[0.01, 0.3], checkpoint_every=2,
        validation_tasks=["quadratic_wellcond"],
        top_k=1, eval_lrs=[0.01, 0.1], eval_seeds=[0], eval_steps=20, grow=False, device="cpu")))
    out = tmp_path / "run"
    kwargs = dict(grammar_yaml=None, config_file=str(config), out=str(out), resume=False, quiet=True)
    launch(2, one_process, kwargs, start_method="fork")  # what dsr-l2o search --nproc 2 runs
    assert capfd.readouterr().out.count("formula:") == 1  # only process 0 reports
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["meta"]["meta_step"] == 4
    assert json.loads((out / "result.json").read_text())["metrics"]["meta_steps"] == 4
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
