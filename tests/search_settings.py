"""The grammar and tiny settings that the end-to-end search tests share."""

SMALL_GRAMMAR = """\
name: sign_momentum
operands:
  g: grad
  m: {ema: g, beta: 0.9}
unary: [sign]
binary: [mul, add]
constants: []
"""

TINY_SEARCH = dict(tasks="quadratics+logreg", validation_tasks=["quadratic_wellcond"], meta_steps=8,
                   unroll=5, horizon=10, top_k=2, eval_seeds=[0], checkpoint_every=2, device="cpu",
                   population=4, population_lrs=[1e-2, 1e-1], workers=1)
"""A search of seconds: eight meta-steps of four formulas at two lrs, one validation task, in one
process (forking workers costs more than such tiny jobs; tests/test_workers.py runs them)."""


def import_what_a_search_imports_later():
    """Import here what a search imports on first use (torch.optim imports dynamo; naming and plots
    import scikit-learn's datasets, matplotlib and sympy), so that forked processes inherit the
    modules instead of each importing them again."""
    import matplotlib.pyplot  # noqa: F401
    import sklearn.datasets  # noqa: F401
    import sympy  # noqa: F401
    import torch._dynamo  # noqa: F401
