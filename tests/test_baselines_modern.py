"""The modern baselines step exactly like their libraries, and their documented settings hold."""

import pytest
import torch

pytest.importorskip("pytorch_optimizer")
pytest.importorskip("schedulefree")

import pytorch_optimizer as po  # noqa: E402
import schedulefree  # noqa: E402

from dsr_l2o.errors import ConfigError  # noqa: E402
from dsr_l2o.evaluation import MODERN_BASELINES, get_baseline, train  # noqa: E402
from dsr_l2o.evaluation.baselines import LIBRARY_BASELINES, LibraryBaseline, parse_baseline_list  # noqa: E402

STEPS, LR, SEED = 6, 0.02, 0


class TinyRegression:
    """A linear layer (a 2-D weight and a 1-D bias) fitted by mean squared error."""

    name, steps = "tiny_regression", STEPS

    def __init__(self):
        gen = torch.Generator().manual_seed(3)
        self.x = torch.randn(16, 4, generator=gen)
        self.y = torch.randn(16, 3, generator=gen)

    def init(self, seed):
        gen = torch.Generator().manual_seed(seed)
        return [torch.randn(3, 4, generator=gen), torch.randn(3, generator=gen)]

    def loss(self, params, step):
        weight, bias = params
        return ((self.x @ weight.T + bias - self.y) ** 2).mean()


def reference_run(make, lr=LR, steps=STEPS):
    """Step the library optimizer by hand, as its docs show."""
    task = TinyRegression()
    params = [p.clone().requires_grad_(True) for p in task.init(SEED)]
    optimizers = make(params, lr)
    optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
    for opt in optimizers:
        if hasattr(opt, "train"):
            opt.train()
    for step in range(steps):
        for opt in optimizers:
            opt.zero_grad()
        task.loss(params, step).backward()
        for opt in optimizers:
            opt.step()
    for opt in optimizers:
        if hasattr(opt, "eval"):
            opt.eval()
    return [p.detach() for p in params]


REFERENCES = {
    "nadam": lambda ps, lr: torch.optim.NAdam(ps, lr=lr),
    "muon": lambda ps, lr: [torch.optim.Muon([ps[0]], lr=lr, weight_decay=0.01, adjust_lr_fn="match_rms_adamw"),
                            torch.optim.AdamW([ps[1]], lr=lr, weight_decay=0.01)],
    "grams": lambda ps, lr: po.Grams(ps, lr=lr),
    "adopt": lambda ps, lr: po.ADOPT(ps, lr=lr),
    "laprop": lambda ps, lr: po.LaProp(ps, lr=lr),
    "mars": lambda ps, lr: po.MARS(ps, lr=lr, optimize_1d=True),
    "ademamix": lambda ps, lr: po.AdEMAMix(ps, lr=lr),
    "cautious_adamw": lambda ps, lr: po.AdEMAMix(ps, lr=lr, alpha=0.0, weight_decay=0.01, weight_decouple=True,
                                                 cautious=True),
    "schedulefree_adamw": lambda ps, lr: schedulefree.AdamWScheduleFree(ps, lr=lr),
}


def run(name, lr=LR):
    return [p.detach() for p in train(get_baseline(name), TinyRegression(), lr, SEED, STEPS).params]


@pytest.mark.parametrize("name", MODERN_BASELINES)
def test_modern_baseline_steps_like_its_library(name):
    ours, reference = run(name), reference_run(REFERENCES[name])
    start = TinyRegression().init(SEED)
    for got, want, before in zip(ours, reference, start):
        assert torch.allclose(got, want, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(got, before)  # it did move


def test_cautious_adamw_without_the_mask_is_torch_adamw():
    without_mask = reference_run(lambda ps, lr: po.AdEMAMix(ps, lr=lr, alpha=0.0, weight_decay=0.01,
                                                            weight_decouple=True))
    adamw = reference_run(lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.01))
    for a, b in zip(without_mask, adamw):
        assert torch.allclose(a, b, atol=1e-6)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(run("cautious_adamw"), adamw))


def test_mars_applies_the_tuned_lr_to_1d_tensors_where_its_default_does_not():
    default_small = reference_run(lambda ps, lr: po.MARS(ps, lr=lr), lr=1e-3)
    default_large = reference_run(lambda ps, lr: po.MARS(ps, lr=lr), lr=1e-1)
    # by default the bias steps at lr_1d whatever lr is (only its weight decay follows lr)
    assert (default_small[1] - default_large[1]).abs().max() < 1e-3
    ours_small, ours_large = run("mars", 1e-3), run("mars", 1e-1)
    assert (ours_small[1] - ours_large[1]).abs().max() > 0.1


def test_muon_steps_matrices_with_muon_and_the_rest_with_adamw():
    weight, bias, kernel = torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, 1, 3, 3)
    opt = get_baseline("muon").make([weight, bias, kernel], LR)
    muon, adamw = opt.optimizers
    assert isinstance(muon, torch.optim.Muon) and muon.param_groups[0]["params"] == [weight]
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["params"] == [bias, kernel]
    assert all(group["lr"] == LR for group in opt.param_groups)
    only_vectors = get_baseline("muon").make([torch.zeros(5)], LR)
    assert [type(o) for o in only_vectors.optimizers] == [torch.optim.AdamW]
    adamw_run = reference_run(lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.01))
    assert not torch.allclose(run("muon")[0], adamw_run[0], atol=1e-4)


def test_schedulefree_is_read_in_eval_mode():
    task = TinyRegression()
    result = train(get_baseline("schedulefree_adamw"), task, LR, SEED, STEPS)
    params = [p.clone().requires_grad_(True) for p in task.init(SEED)]
    opt = schedulefree.AdamWScheduleFree(params, lr=LR)
    opt.train()
    for step in range(STEPS):
        opt.zero_grad()
        task.loss(params, step).backward()
        opt.step()
    assert not torch.allclose(params[0].detach(), result.params[0])  # train-mode point differs
    opt.eval()
    assert torch.allclose(params[0].detach(), result.params[0], atol=1e-6)


def test_a_baseline_without_its_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(LIBRARY_BASELINES, "ghost", LibraryBaseline("no_such_module_xyz", "Ghost",
                                                                    package="ghost-optim"))
    with pytest.raises(ConfigError, match=r'ghost-optim: pip install -e "\.\[baselines\]"') as err:
        get_baseline("ghost")
    assert "\n" not in str(err.value)
    monkeypatch.setattr("dsr_l2o.evaluation.baselines.BASELINE_GROUPS", {"all": ("adam", "ghost")})
    assert parse_baseline_list("all") == (["adam"], ["ghost"])
