"""Meta-training runs for tests/test_distributed.py, importable by the processes it spawns."""

from __future__ import annotations

import os
from pathlib import Path

import torch

import dsr_l2o
from dsr_l2o.atomic import write_torch
from dsr_l2o.search import distributed
from dsr_l2o.search.checkpoint import load_checkpoint
from dsr_l2o.search.config import load_config
from dsr_l2o.search.meta_train import MetaTrainer, run_meta_training
from dsr_l2o.search.relaxation import RelaxedRule
from dsr_l2o.tasks import get_family
from dsr_l2o.threads import single_thread

CPU = torch.device("cpu")


def meta_train(out: Path, steps: int, resume_at: int | None = None, die_at: int | None = None, **settings) -> dict:
    """``steps`` meta-steps of a depth-1 relaxation in this process group; with ``resume_at``, the
    run stops at that meta-step, checkpoints (process 0 only), and every process resumes a fresh
    trainer from the checkpoint. Returns the rule, the records and the hall of fame."""
    torch.manual_seed(0)
    config = load_config(meta_steps=steps, device="cpu", **settings)
    records = []

    def keep(record):
        records.append(record)
        if die_at is not None and distributed.rank() == 1 and len(records) == die_at:
            os._exit(3)

    trainer = _trainer(config)
    distributed.align(trainer)
    if resume_at is not None:
        while trainer.state.meta_step < resume_at:
            keep(trainer.step())
        if distributed.is_writer():
            write_torch(out.with_suffix(".ckpt.pt"), trainer.state_dict())
        distributed.all_sum(torch.zeros(1))  # the checkpoint is written before anyone reads it
        trainer = _trainer(config)
        load_checkpoint(out.with_suffix(".ckpt.pt"), trainer, CPU)
        distributed.align(trainer)
    run_meta_training(trainer, keep, lambda: None)
    hall = getattr(trainer.estimator, "hall", None)
    return {"rule": trainer.rule.state_dict(), "world": distributed.world(),
            "records": [{k: v for k, v in r.items() if k != "seconds"} for r in records],
            "hall": hall.to_json() if hall is not None else None}


def _trainer(config) -> MetaTrainer:
    torch.manual_seed(config.seed)
    rule = RelaxedRule(dsr_l2o.load_grammar(), depth=1, init_lr=config.init_lr, init_bias=config.init_bias)
    return MetaTrainer(rule, get_family(config.tasks), config, CPU)


def runs(out: str, plans: dict[str, dict], timeout: float = 60.0) -> None:
    """Every plan's :func:`meta_train` in one process group (process 0 saves them all to ``out``)."""
    with single_thread(), distributed.session(CPU, timeout):
        results = {name: meta_train(Path(out).with_name(name), **plan) for name, plan in plans.items()}
        if distributed.is_writer():
            torch.save(results, out)
