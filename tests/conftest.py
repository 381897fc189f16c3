"""Shared test settings: deterministic, small, CPU-only."""

import pytest


@pytest.fixture(autouse=True)
def _deterministic():
    import torch

    torch.manual_seed(0)
    yield


def pytest_configure(config):
    if _runs_tests_here(config):
        import torch

        # The tasks are tiny: intra-op threads cost far more than they give on 2 cores.
        torch.set_num_threads(1)


def _runs_tests_here(config) -> bool:
    """False in pytest-xdist's controller, which only hands the tests to its workers (and so
    need not spend 2 s importing torch before it starts them)."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)
