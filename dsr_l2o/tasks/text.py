"""Character-level language modelling on the Python standard library's own source files.

The text is read from fixed module files under ``sysconfig.get_paths()["stdlib"]`` (nothing is
downloaded), mapped to a small character vocabulary and cut into windows; a one-block causal
self-attention model predicts each next character.
"""

from __future__ import annotations

import math
import string
import sysconfig
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TaskError

MAX_CHARS = 16_000
TEST_SHARE = 0.2
_PUNCTUATION = "()[]{}:.,=_'\"#+-*/<>%"
VOCAB = tuple(string.ascii_lowercase) + (" ", "\n", "0") + tuple(_PUNCTUATION) + ("?",)
"""Letters (upper case folded), space, newline, one token for every digit, common punctuation
and ``?`` for everything else."""
_INDEX = {c: i for i, c in enumerate(VOCAB)}


def encode(text: str) -> torch.Tensor:
    """Token ids of ``text`` in :data:`VOCAB`."""
    other = _INDEX["?"]
    ids = [_INDEX.get("0" if c.isdigit() else c.lower(), other) for c in text]
    return torch.tensor(ids, dtype=torch.int64)


@lru_cache(maxsize=None)
def stdlib_text(filename: str) -> str:
    """The first :data:`MAX_CHARS` characters of a standard-library module file."""
    path = Path(sysconfig.get_paths()["stdlib"]) / filename
    if not path.is_file():
        raise TaskError(f"standard-library file {filename!r} not found under {path.parent}; "
                        "pick a module file this Python ships")
    return path.read_text(encoding="utf-8", errors="replace")[:MAX_CHARS]


@lru_cache(maxsize=None)
def char_windows(filename: str, context: int):
    """``(x_train, y_train, x_test, y_test)``: windows of ``context`` tokens and their next-token
    targets; the last :data:`TEST_SHARE` of the file is the test split."""
    ids = encode(stdlib_text(filename))
    count = (len(ids) - 1) // context
    x = ids[: count * context].reshape(count, context)
    y = ids[1: count * context + 1].reshape(count, context)
    cut = int(round(count * (1 - TEST_SHARE)))
    return x[:cut], y[:cut], x[cut:], y[cut:]


class CausalSelfAttentionLM(nn.Module):
    """Embedding + learned positions, one pre-norm block (causal multi-head self-attention and a
    two-layer MLP, each residual), a final norm and a linear read-out over the vocabulary."""

    def __init__(self, vocab: int, width: int, context: int, heads: int = 2, mlp_ratio: int = 2):
        super().__init__()
        if width % heads:
            raise TaskError(f"attention width {width} must be a multiple of the head count {heads}")
        self.heads = heads
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(context, width))
        self.norm1, self.norm2, self.norm_out = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))
        self.head = nn.Linear(width, vocab)
        self.register_buffer("mask", torch.ones(context, context).triu(1).bool(), persistent=False)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.position, std=0.1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length = tokens.shape
        h = self.embed(tokens) + self.position[:length]
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        split = lambda a: a.reshape(batch, length, self.heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(self.mask[:length, :length], float("-inf"))
        mixed = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch, length, -1)
        h = h + self.proj(mixed)
        h = h + self.mlp(self.norm2(h))
        return self.head(self.norm_out(h))


def sequence_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position of every window."""
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))
