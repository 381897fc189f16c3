"""What MARS's lead over Adam is made of, on the validation tasks only.

    python benchmarks/mars_ablation.py [--seeds 2]

MARS (Yuan et al. 2024) runs Adam on a corrected gradient ``c = g + a * (g - g_prev)`` with
``a = gamma * beta1 / (1 - beta1)``, clipped to unit norm per tensor, at betas (0.95, 0.99). This
benchmark takes those parts apart with one small reimplementation (:class:`MarsParts`) and tunes
every variant, pytorch-optimizer's MARS and Adam under the fair protocol on ``SUITE_VALIDATION``
(never on the test tasks: it informs what the grammar should offer next). The per-tensor clip is
the one part a per-coordinate grammar cannot write. Writes mars_ablation.md/.json beside this file.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


class MarsParts(torch.optim.Optimizer):
    """Adam on ``c = g + a (g - g_prev)``, optionally clipped to unit norm per tensor."""

    def __init__(self, params, lr=1e-3, betas=(0.95, 0.99), gamma=0.025, clip=True, eps=1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "gamma": gamma, "clip": clip, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            a = group["gamma"] * beta1 / (1 - beta1)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p), prev=torch.zeros_like(p))
                state["t"] += 1
                c = p.grad + a * (p.grad - state["prev"])
                if group["clip"]:
                    c = c / c.norm().clamp_min(1.0)
                state["m"].lerp_(c, 1 - beta1)
                state["v"].mul_(beta2).addcmul_(c, c, value=1 - beta2)
                m_hat = state["m"] / (1 - beta1 ** state["t"])
                v_hat = state["v"] / (1 - beta2 ** state["t"])
                p.add_(m_hat / (v_hat.sqrt() + group["eps"]), alpha=-group["lr"])
                state["prev"].copy_(p.grad)


VARIANTS = {
    "Adam (0.9, 0.999)": ("adam", {}),
    "MARS (pytorch-optimizer)": ("mars", {}),
    "Adam at (0.95, 0.99)": (MarsParts, {"gamma": 0.0, "clip": False}),
    "clip only, (0.95, 0.99)": (MarsParts, {"gamma": 0.0}),
    "correction only, (0.95, 0.99)": (MarsParts, {"clip": False}),
    "correction + clip, (0.95, 0.99)": (MarsParts, {}),
    "correction + clip, (0.9, 0.999)": (MarsParts, {"betas": (0.9, 0.999)}),
}


def main(argv=None) -> int:
    from dsr_l2o.evaluation import get_baseline
    from dsr_l2o.evaluation.ratios import geometric_mean_ratio, score_ratio
    from dsr_l2o.tasks.suite import SUITE_VALIDATION
    from machine import cpu_name
    from validation_scores import tune_on_validation, write_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    specs = [dataclasses.replace(get_baseline(spec, **kwargs), name=name) for name, (spec, kwargs) in VARIANTS.items()]
    scores = tune_on_validation(specs, args.seeds)
    reference = "Adam (0.9, 0.999)"
    others = [t for t in SUITE_VALIDATION if t not in ("val_valley", "val_logistic")]

    def geo(name, tasks):
        return geometric_mean_ratio([scores[t][name] for t in tasks], [scores[t][reference] for t in tasks])

    lines = ["# What MARS's lead over Adam is made of (validation tasks only)", "",
             f"Written by `python benchmarks/mars_ablation.py --seeds {args.seeds}`; do not edit by hand. "
             f"{dt.date.today()}, {cpu_name()}, {time.perf_counter() - started:.0f} s.", "",
             "Fair protocol on `SUITE_VALIDATION` (16 lrs from 1e-4 to 10, a best lr at an edge followed past it, "
             f"seeds 0-{args.seeds - 1}); every variant ran in one process. `correction` is c = g + a (g - g_prev) with "
             "a = 0.025 * beta1 / (1 - beta1); `clip` divides c by max(1, its norm) per tensor, the one part a "
             "per-coordinate grammar cannot write. Cells are tuned score / tuned Adam's.", "",
             "| variant | " + " | ".join(t.removeprefix("val_") for t in SUITE_VALIDATION)
             + " | geometric mean | without valley and logistic |",
             "|---|" + "---:|" * (len(SUITE_VALIDATION) + 2)]
    for name in VARIANTS:
        cells = [f"{score_ratio(scores[t][name], scores[t][reference]):.3g}" for t in SUITE_VALIDATION]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {geo(name, SUITE_VALIDATION):.3g} | {geo(name, others):.3g} |")
    write_page("mars_ablation", lines, {"seeds": args.seeds, "scores": scores})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
