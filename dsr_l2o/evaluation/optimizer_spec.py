"""The user's own optimizers as baselines or teachers: ``"module:Class"``, a class, or a factory.

* ``"module:attr"`` imports ``module`` (dotted names allowed on both sides) and takes ``attr``.
* A class must subclass :class:`torch.optim.Optimizer` and take an ``lr`` keyword; the protocol
  tunes ``lr`` on the shared grid and passes the other keywords (``kwargs``) through unchanged.
* A factory is any other callable ``(params, lr) -> optimizer``; what it returns needs
  ``step()`` and ``zero_grad()``.

Every problem is a one-line :class:`~dsr_l2o.errors.ConfigError`: a module that does not import,
a missing attribute, a class that is not an Optimizer, no ``lr`` parameter, a keyword the class
does not take, ``lr`` among the keywords, or a constructor that fails on a small probe tensor.
"""

from __future__ import annotations

import inspect
import json

import torch

from ..errors import ConfigError
from ..imports import first_line
from ..imports import import_attr as _import_attr
from .baselines import OptimizerSpec, train_mode

def import_attr(spec: str, what: str = "baseline"):
    """The object named by ``"module:attr"`` (a one-line ConfigError if it cannot be found)."""
    return _import_attr(spec, what, ConfigError,
                        f"{what} {spec!r}: expected 'module:Class' such as 'pytorch_optimizer:Lamb'")


def _signature(obj):
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _check_keywords(label: str, sig, kwargs: dict) -> None:
    if "lr" in kwargs:
        raise ConfigError(f"{label}: 'lr' is tuned on the shared grid; remove it from the keywords")
    if sig is None or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(f"{label}: unknown keyword {key!r}; it takes {', '.join(accepted)}")


def _probe(label: str, make) -> None:
    """Build the optimizer for a 2x2 tensor and take one step, so bad settings fail here, in one line."""
    probe = torch.zeros(2, 2, requires_grad=True)
    try:
        optimizer = make([probe], 1e-3)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"{label}: building it at lr=1e-3 for a 2x2 tensor raised {first_line(err)}; "
                          "check its keywords") from None
    if not (callable(getattr(optimizer, "step", None)) and callable(getattr(optimizer, "zero_grad", None))):
        raise ConfigError(f"{label}: it returned a {type(optimizer).__name__}, not an optimizer "
                          "(one with step() and zero_grad())")
    probe.grad = torch.ones_like(probe)
    try:
        optimizer.step()
    except Exception as err:
        raise ConfigError(f"{label}: a first step() at lr=1e-3 on a 2x2 tensor raised {first_line(err)}; "
                          "check its keywords (step() is called without a closure)") from None


def display_name(base: str, kwargs: dict) -> str:
    """``base`` or ``base(key=value,...)`` when keywords were given (names stay distinct)."""
    if not kwargs:
        return base
    return base + "(" + ",".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"


def class_spec(cls, settings: dict, name: str, user: dict | None = None, trusted: bool = False) -> OptimizerSpec:
    """A spec that builds ``cls(params, lr=lr, **settings)`` (then puts it in train mode).

    ``user`` are the keywords the user added (named in the spec's name and checked against the
    signature); ``trusted`` skips the Optimizer-subclass and ``lr`` checks for built-in baselines.
    """
    user = dict(user or {})
    label = f"baseline {name!r}"
    sig = _signature(cls)
    if not trusted:
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise ConfigError(f"{label}: {getattr(cls, '__name__', cls)!r} is not a torch.optim.Optimizer "
                              "subclass; give an optimizer class such as 'torch.optim:Adam'")
        if sig is not None and "lr" not in sig.parameters:
            raise ConfigError(f"{label}: {cls.__name__} has no 'lr' parameter, so the learning rate "
                              "cannot be tuned; give a class whose constructor takes lr")
    _check_keywords(label, sig, user)
    settings = dict(settings)

    def make(params, lr):
        return train_mode(cls(params, lr=lr, **settings))

    if user or not trusted:
        _probe(label, make)
    return OptimizerSpec(display_name(name, user), make)


def factory_spec(factory, kwargs: dict, name: str) -> OptimizerSpec:
    """A spec that builds ``factory(params, lr, **kwargs)`` (then puts it in train mode)."""
    label = f"optimizer factory {name!r}"
    sig = _signature(factory)
    if sig is not None:
        try:
            sig.bind([], 1.0, **kwargs)
        except TypeError as err:
            raise ConfigError(f"{label} must take (params, lr) and the given keywords ({err})") from None
    _check_keywords(label, None, kwargs)
    kwargs = dict(kwargs)

    def make(params, lr):
        return train_mode(factory(params, lr, **kwargs))

    _probe(label, make)
    return OptimizerSpec(display_name(name, kwargs), make)


def user_spec(obj, kwargs: dict) -> OptimizerSpec:
    """The spec of a ``"module:attr"`` string, an optimizer class or a factory."""
    name = None
    if isinstance(obj, str):
        name, obj = obj, import_attr(obj)
    if isinstance(obj, type):
        return class_spec(obj, kwargs, name or obj.__name__, user=kwargs)
    if callable(obj):
        return factory_spec(obj, kwargs, name or getattr(obj, "__name__", "factory"))
    raise ConfigError(f"baseline {name or obj!r}: a {type(obj).__name__} is neither an optimizer class "
                      "nor a factory (params, lr) -> optimizer")


def parse_baseline_kwargs(texts) -> dict[str, dict]:
    """``["SPEC=JSON", ...]`` (``--baseline-kwargs``) as ``{SPEC: keywords}``.

    JSON must be an object; its lists become tuples (``"betas": [0.9, 0.95]``).
    Example: ``pytorch_optimizer:Lamb={"weight_decay": 0.01}``.
    """
    result: dict[str, dict] = {}
    for text in texts or ():
        spec, sep, body = text.partition("=")
        spec = spec.strip()
        if not sep or not spec:
            raise ConfigError(f"--baseline-kwargs {text!r}: expected SPEC=JSON, e.g. "
                              "'pytorch_optimizer:Lamb={\"weight_decay\": 0.01}'")
        try:
            value = json.loads(body)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--baseline-kwargs {text!r}: the part after '=' is not JSON ({err.msg} at "
                              f"character {err.pos + 1}); write an object such as {{\"weight_decay\": 0.01}}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"--baseline-kwargs {text!r}: give a JSON object, e.g. {{\"weight_decay\": 0.01}}")
        if spec in result:
            raise ConfigError(f"--baseline-kwargs: {spec!r} is given twice; merge its keywords into one object")
        result[spec] = {key: tuple(v) if isinstance(v, list) else v for key, v in value.items()}
    return result
