"""The named built-in tasks. Each entry is ``name -> (factory, description)``; factories take
no arguments and build a fresh task (data is loaded once and cached)."""

from __future__ import annotations

from .networks import dataset_task, digits_cnn, logreg_task, mlp_task
from .quadratic import QuadraticTask
from .rosenbrock import RosenbrockTask


def _quadratic(name, description, **kw):
    return lambda: QuadraticTask(name, description=description, **kw)


def _rosenbrock(name, description, **kw):
    return lambda: RosenbrockTask(name, description=description, **kw)


def _logreg(name, description, dataset, **kw):
    return lambda: logreg_task(name, dataset, description=description, **kw)


def _mlp(name, description, dataset, hidden, activation, **kw):
    return lambda: mlp_task(name, dataset, hidden, activation, description=description, **kw)


def _cnn(name, description, **kw):
    return lambda: dataset_task(name, "digits", lambda n_in, n_out: digits_cnn(),
                                description=description, **kw)


_SPECS = [
    ("quadratic_wellcond", "20-d random quadratic, condition number 10, exact gradients",
     _quadratic, dict(dim=20, condition=10.0, steps=100)),
    ("quadratic_illcond", "20-d random quadratic, condition number 1e4, exact gradients",
     _quadratic, dict(dim=20, condition=1e4, steps=200)),
    ("noisy_quadratic", "20-d random quadratic, condition number 100, target noise 0.5",
     _quadratic, dict(dim=20, condition=100.0, noise=0.5, steps=200)),
    ("rosenbrock_2d", "2-d Rosenbrock (curvature 100) from near (-1.2, 1)",
     _rosenbrock, dict(dim=2, steps=300)),
    ("rosenbrock_10d", "10-d chained Rosenbrock (curvature 100)",
     _rosenbrock, dict(dim=10, steps=300)),
    ("logreg_cancer", "logistic regression on sklearn breast_cancer (30 features), batch 64",
     _logreg, dict(dataset="breast_cancer", batch_size=64, steps=200)),
    ("logreg_digits", "multinomial logistic regression on sklearn digits, batch 128",
     _logreg, dict(dataset="digits", batch_size=128, steps=200)),
    ("mlp_digits_tanh", "MLP 64-32-10 with tanh on sklearn digits, batch 128",
     _mlp, dict(dataset="digits", hidden=(32,), activation="tanh", steps=200)),
    ("mlp_digits_relu", "MLP 64-32-10 with relu on sklearn digits, batch 128",
     _mlp, dict(dataset="digits", hidden=(32,), activation="relu", steps=200)),
    ("cnn_digits", "CNN (conv 8, conv 16, linear) on the 8x8 sklearn digits, batch 128",
     _cnn, dict(steps=200)),
    ("mlp_diabetes", "regression MLP 10-32-1 with tanh on sklearn diabetes (MSE), batch 64",
     _mlp, dict(dataset="diabetes", hidden=(32,), activation="tanh", batch_size=64, steps=200)),
]

BUILTIN_TASKS = {name: (make(name, description, **kw), description)
                 for name, description, make, kw in _SPECS}
