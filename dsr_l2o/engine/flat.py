"""Flat views of a task's parameter list: ``[t1, t2, ...] <-> one vector of N numbers``."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FlatLayout:
    """The shapes of a task's parameter tensors, to flatten them into one vector and back."""

    shapes: tuple[torch.Size, ...]

    @classmethod
    def of(cls, params: list[torch.Tensor]) -> "FlatLayout":
        """The layout of ``params`` (as returned by ``task.init``)."""
        return cls(tuple(torch.Size(p.shape) for p in params))

    @property
    def sizes(self) -> list[int]:
        return [s.numel() for s in self.shapes]

    @property
    def numel(self) -> int:
        """``N``: the number of scalars in one flat vector."""
        return sum(self.sizes)

    def flatten(self, params: list[torch.Tensor]) -> torch.Tensor:
        """One vector holding every tensor of ``params`` in order."""
        return torch.cat([p.reshape(-1) for p in params])

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The parameter list of a vector ``[..., N]`` (views; leading dims are kept)."""
        lead = flat.shape[:-1]
        pieces = torch.split(flat, self.sizes, dim=-1)
        return [piece.reshape(*lead, *shape) for piece, shape in zip(pieces, self.shapes)]
