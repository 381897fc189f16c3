"""Real data from scikit-learn's bundled datasets: standardised, a fixed train/test split,
cached in memory; plus the deterministic minibatch index tables of the tasks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..errors import TaskError

TEST_FRACTION = 0.25
SPLIT_SEED = 0
CLIP = 5.0
BATCH_CYCLE = 1024

_LOADERS = {
    "digits": ("load_digits", True),
    "breast_cancer": ("load_breast_cancer", True),
    "wine": ("load_wine", True),
    "iris": ("load_iris", True),
    "diabetes": ("load_diabetes", False),
}

DATASETS = tuple(_LOADERS)


@dataclass(frozen=True)
class Dataset:
    """Standardised features (float32) and targets: class ids (int64) or standardised values."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int  # 0 for regression

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


@lru_cache(maxsize=None)
def load_dataset(name: str) -> Dataset:
    """The bundled dataset ``name`` with a fixed stratified 75/25 split.

    Features are standardised with training statistics (tiny standard deviations floored) and
    clipped to +-5; regression targets are standardised too. Do not modify the returned tensors.
    """
    if name not in _LOADERS:
        raise TaskError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    import sklearn.datasets

    loader, classification = _LOADERS[name]
    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    return split_dataset(name, x, y, classification)


def split_dataset(name: str, x: np.ndarray, y: np.ndarray, classification: bool) -> Dataset:
    """A fixed (stratified, for classification) 75/25 split of ``(x, y)``, standardised as in
    :func:`load_dataset`."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=y if classification else None)
    mean, std = x_tr.mean(0), x_tr.std(0)
    std = np.maximum(std, 0.1 * std.mean() + 1e-12)

    def features(a):
        return torch.as_tensor(np.clip((a - mean) / std, -CLIP, CLIP), dtype=torch.float32)

    if classification:
        targets = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
        n_classes = int(y.max()) + 1
    else:
        y_mean, y_std = y_tr.mean(), y_tr.std()
        targets = lambda a: torch.as_tensor((a - y_mean) / y_std, dtype=torch.float32)  # noqa: E731
        n_classes = 0
    return Dataset(name, features(x_tr), targets(y_tr), features(x_te), targets(y_te), n_classes)


def batch_table(n: int, batch_size: int, seed: int, cycle: int = BATCH_CYCLE) -> torch.Tensor:
    """Row ``k`` holds the example indices of step ``k`` (steps wrap around after ``cycle``).

    Indices come from consecutive random permutations of ``range(n)`` drawn from ``seed``, so
    every example is seen once per epoch.
    """
    batch_size = min(batch_size, n)
    gen = torch.Generator().manual_seed(seed)
    epochs = -(-cycle * batch_size // n)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])
    return order[: cycle * batch_size].reshape(cycle, batch_size)
