"""Candidates tuned by forked workers, a task each: the same values as in one process."""

import json
import os

import pytest
import torch

from dsr_l2o.errors import ConfigError, DsrError
from dsr_l2o.evaluation.protocol import EvalProtocol
from dsr_l2o.formula import parse_formula
from dsr_l2o.search.config import load_config
from dsr_l2o.search.select import Candidate, Scorer
from dsr_l2o.tasks import get_task
from dsr_l2o.workers import cores, map_jobs, resolve_workers
from search_settings import SMALL_GRAMMAR, TINY_SEARCH

PROTOCOL = EvalProtocol(lrs=(1e-3, 1e-2, 1e-1, 1.0), seeds=(0, 1), steps=30)


def _scores(workers: int):
    tasks = [get_task(n) for n in ("quadratic_illcond", "val_logistic", "val_valley")]
    scorer = Scorer(tasks, PROTOCOL, lambda text: None, workers)
    candidates = scorer.score_many([Candidate(parse_formula(f), f, None) for f in ("m_tilde", "sign(m)", "g")])
    more = scorer.with_seeds((0, 1, 2))  # reuses the runs the workers filed in the memo
    rescored = more.score_many([Candidate(c.formula, c.raw_text, None) for c in candidates[:2]])
    return scorer.reference, [(c.scores, c.lrs, c.seed_logs, c.ratio, c.lr) for c in candidates + rescored]


def test_workers_give_the_values_of_one_process_bit_for_bit():
    one, two = _scores(1), _scores(2)
    assert one == two
    assert len({ratio for *_, ratio, _ in one[1][:3]}) == 3  # three different rules, so the comparison means something
    assert [len(seed_logs) for _, _, seed_logs, _, _ in one[1]] == [2, 2, 2, 3, 3]


def test_tuned_adam_joins_the_first_candidates_with_the_values_of_a_run_alone():
    from dsr_l2o.engine import tune_batched
    from dsr_l2o.evaluation import get_baseline

    tasks = [get_task(n) for n in ("quadratic_illcond", "val_logistic")]
    joined = Scorer(tasks, PROTOCOL, lambda text: None)
    first = Scorer(tasks, PROTOCOL, lambda text: None)
    alone = {t.name: tune_batched(get_baseline("adam"), t, PROTOCOL).best_score for t in tasks}
    assert first.reference == alone  # asked for before any candidate: tuned on its own
    texts = ("m_tilde", "sign(m)")
    a, b = (scorer.score_many([Candidate(parse_formula(f), f, None) for f in texts]) for scorer in (joined, first))
    assert joined.reference == alone
    assert [(c.scores, c.seed_logs, c.ratio) for c in a] == [(c.scores, c.seed_logs, c.ratio) for c in b]


def test_map_jobs_keeps_the_order_and_runs_in_other_processes():
    assert map_jobs(lambda x: (x * x, os.getpid()), [3, 1, 2], 2)[0][0] == 9
    values = map_jobs(lambda x: (x * x, os.getpid()), list(range(6)), 2)
    assert [v for v, _ in values] == [0, 1, 4, 9, 16, 25]
    assert os.getpid() not in {pid for _, pid in values}
    assert map_jobs(lambda x: os.getpid(), [0, 1], 1) == [os.getpid()] * 2


def test_an_error_in_a_worker_is_raised_here_and_a_dead_worker_is_one_line():
    def job(x):
        if x == 2:
            raise ConfigError("task 2 is broken")
        return x

    with pytest.raises(ConfigError, match="task 2 is broken"):
        map_jobs(job, [0, 1, 2, 3], 2)
    with pytest.raises(DsrError, match=r"^a worker process ended abruptly .* rerun with workers: 1$"):
        map_jobs(lambda x: os._exit(3) if x == 1 else x, [0, 1, 2], 2)


def test_worker_count_setting():
    assert resolve_workers("auto", torch.device("cpu")) == cores()
    assert resolve_workers(3, torch.device("cpu")) == 3
    assert resolve_workers("auto", torch.device("cuda")) == 1
    assert resolve_workers("auto", torch.device("cpu"), world=2) == 1
    assert load_config(None).workers == "auto"
    for bad in (0, -1, "many", True, 1.5):
        with pytest.raises(ConfigError, match="workers: must be auto or a whole number >= 1"):
            load_config(None, workers=bad)


def test_more_threads_run_the_jobs_here():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert map_jobs(lambda x: os.getpid(), [0, 1], 2) == [os.getpid()] * 2
    finally:
        torch.set_num_threads(threads)


def test_a_search_on_two_workers_gives_the_result_of_one(tmp_path):
    from dsr_l2o.search import search

    grammar = tmp_path / "small.yaml"
    grammar.write_text(SMALL_GRAMMAR)
    settings = dict(TINY_SEARCH, meta_steps=4, eval_lrs=[1e-2, 1e-1], eval_steps=30, grow=False)
    one = search(grammar, out=tmp_path / "one", **dict(settings, workers=1)).data
    two = search(grammar, out=tmp_path / "two", **dict(settings, workers=2)).data
    assert two["config"]["workers"] == 2
    for key in ("formula", "lr", "raw_formula", "candidates", "validation"):
        assert one[key] == two[key], key
    lines = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("one", "two")]
    drop = lambda line: {k: v for k, v in json.loads(line).items() if k != "seconds"}  # noqa: E731
    assert [drop(x) for x in lines[0]] == [drop(x) for x in lines[1]]


def test_compare_on_two_workers_gives_the_scores_of_one_and_reports_every_run():
    from dsr_l2o.evaluation.compare import compare

    tasks = [get_task(n) for n in ("quadratic_illcond", "val_logistic")]
    runs = [[], []]
    tables = []
    for workers, seen in zip((1, 2), runs):
        comparison = compare(["adam", "sgd", "lion"], tasks, PROTOCOL, progress=seen.append, workers=workers)
        tables.append({t: {name: (r.best_lr, r.best_score, r.seed_scores, r.curve) for name, r in per.items()}
                       for t, per in comparison.results.items()})
    assert tables[0] == tables[1]
    assert len(runs[0]) == len(runs[1]) == 3 * len(tasks) * PROTOCOL.runs_per_tune


def test_evaluate_rejects_a_bad_worker_count_in_one_line(capsys):
    from dsr_l2o.cli import main

    with pytest.raises(SystemExit) as info:
        main(["evaluate", "m_tilde", "--out", "unused", "--workers", "none"])
    assert info.value.code != 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "error: --workers must be auto or a whole number >= 1, got 'none'"
