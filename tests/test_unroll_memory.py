"""The recomputed (checkpointed) unroll gives the plain unroll's meta-gradient and next episode."""

import pytest
import torch

import dsr_l2o
from dsr_l2o.errors import ConfigError
from dsr_l2o.search.config import load_config
from dsr_l2o.search.meta_train import MetaTrainer
from dsr_l2o.search.relaxation import RelaxedRule
from dsr_l2o.tasks import get_family


def _one_step(recompute_segment: int, relaxation: str):
    torch.manual_seed(0)
    config = load_config(estimator="truncated_backprop", unroll=5, horizon=10, meta_steps=4,
                         recompute_segment=recompute_segment,
                         relaxation=relaxation, device="cpu")
    rule = RelaxedRule(dsr_l2o.load_grammar(), depth=2, init_lr=config.init_lr, init_bias=config.init_bias)
    trainer = MetaTrainer(rule, get_family("quadratics"), config, torch.device("cpu"))
    record = trainer.step()
    grads = {name: p.grad.clone() for name, p in rule.named_parameters() if p.grad is not None}
    return record, grads, trainer._episodes[0].flat.clone()


@pytest.mark.parametrize("relaxation", ["sampled", "soft"])
@pytest.mark.parametrize("segment", [1, 3])
def test_recomputed_unroll_gives_the_same_meta_gradient(relaxation, segment):
    plain_record, plain, plain_flat = _one_step(0, relaxation)
    record, grads, flat = _one_step(segment, relaxation)
    assert plain and set(grads) == set(plain)
    assert record["meta_loss"] == pytest.approx(plain_record["meta_loss"], rel=1e-6)
    assert any(float(g.abs().max()) > 0 for g in plain.values())
    for name, g in plain.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(flat, plain_flat)


def test_recompute_segment_must_be_a_whole_number():
    with pytest.raises(ConfigError, match="recompute_segment"):
        load_config(recompute_segment=-1)
