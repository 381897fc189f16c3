"""A task module written as a user would write it from docs/getting-started.md ("Your own task"):
plain classes with the four required members only, and a family with ``name`` and ``sample``."""

import torch


class LeastSquares:
    """Fit w in R^3 to y = X w* on a fixed random design (the minibatch is the whole set)."""

    name = "least_squares"
    steps = 40

    def __init__(self, scale: float = 1.0, name: str = "least_squares"):
        gen = torch.Generator().manual_seed(7)
        self.name = name
        self.x = torch.randn(32, 3, generator=gen) * scale
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5])

    def init(self, seed):
        return [torch.randn(3, generator=torch.Generator().manual_seed(seed))]

    def loss(self, params, step):
        (w,) = params
        return ((self.x @ w - self.y) ** 2).mean()


class ScaledLeastSquares:
    """Least-squares tasks whose design is scaled by a seed-dependent factor."""

    name = "scaled_least_squares"

    def sample(self, seed):
        return LeastSquares(scale=1.0 + seed, name=f"scaled_least_squares-{seed}")


def make_family():
    return ScaledLeastSquares()


class Unnamed:
    """Same family, but every sample has the same name: a bad family."""

    name = "unnamed"

    def sample(self, seed):
        return LeastSquares(scale=1.0 + seed)
