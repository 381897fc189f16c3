"""Optimizers as a user would write them, for ``module:Class`` baseline specs."""

import torch


class SignSGD(torch.optim.Optimizer):
    """w <- w - lr * sign(g) (optionally with a decoupled weight decay)."""

    def __init__(self, params, lr=1e-3, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"]).add_(p.grad.sign(), alpha=-group["lr"])


class NoLearningRate(torch.optim.Optimizer):
    def __init__(self, params, step_size=0.1):
        super().__init__(params, {"step_size": step_size})


class NotAnOptimizer:
    def __init__(self, params, lr=0.1):
        self.params = list(params)


def sign_sgd_factory(params, lr):
    return SignSGD(params, lr=lr)
