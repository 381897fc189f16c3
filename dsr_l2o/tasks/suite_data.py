"""Datasets of the task suite: scikit-learn's bundled ones and its generators at fixed seeds.

A source is a bundled name (``"wine"``) or ``"GENERATOR:SEED"`` with a generator of
:data:`GENERATORS` (``"moons:101"``); the generator's other settings are fixed here.
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import TaskError
from .data import DATASETS, Dataset, load_dataset, split_dataset

GENERATORS = {
    "moons": ("make_moons", dict(n_samples=600, noise=0.25), True),
    "circles": ("make_circles", dict(n_samples=600, noise=0.1, factor=0.5), True),
    "blobs": ("make_blobs", dict(n_samples=600, centers=4, n_features=5, cluster_std=2.5), True),
    "classification": ("make_classification", dict(n_samples=800, n_features=12, n_informative=6,
                                                   n_classes=3, n_clusters_per_class=2), True),
    "regression": ("make_regression", dict(n_samples=600, n_features=20, n_informative=10,
                                           effective_rank=5, noise=5.0), False),
    "friedman1": ("make_friedman1", dict(n_samples=600, noise=1.0), False),
}


def parse_source(source: str) -> tuple[str, int | None]:
    """``(generator, seed)`` of ``"GENERATOR:SEED"``; ``(name, None)`` for a bundled dataset."""
    if ":" not in source:
        if source not in DATASETS:
            raise TaskError(f"unknown dataset {source!r}; use one of {', '.join(DATASETS)} or "
                            f"GENERATOR:SEED with a generator of {', '.join(GENERATORS)}")
        return source, None
    name, _, seed = source.partition(":")
    if name not in GENERATORS or not seed.isdigit():
        raise TaskError(f"bad generated dataset {source!r}; write GENERATOR:SEED with a generator "
                        f"of {', '.join(GENERATORS)}, e.g. moons:101")
    return name, int(seed)


@lru_cache(maxsize=256)  # generated sources are many (one per family seed): keep the cache bounded
def suite_dataset(source: str) -> Dataset:
    """The dataset of ``source``, split and standardised as :func:`~.data.load_dataset` does."""
    name, seed = parse_source(source)
    if seed is None:
        return load_dataset(name)
    import sklearn.datasets

    maker, kwargs, classification = GENERATORS[name]
    x, y = getattr(sklearn.datasets, maker)(random_state=seed, **kwargs)
    return split_dataset(source, x, y, classification)
