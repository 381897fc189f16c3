"""The learned optimizer on disk: ``DIR/l2o.pt`` (tensors and plain numbers, loads with
``weights_only=True``) and ``DIR/l2o.json`` (its settings and training summary)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..atomic import write_json, write_torch
from ..errors import ResultError
from .model import CoordinateLSTM, LSTMConfig

CHECKPOINT = "l2o.pt"
SETTINGS = "l2o.json"
FORMAT = 1


def save_l2o(directory: str | Path, net: CoordinateLSTM, lr: float, settings: dict) -> None:
    """Write the network, its step size and ``settings`` to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "hidden": net.config.hidden, "layers": net.config.layers, "lr": float(lr),
               "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
    write_torch(directory / CHECKPOINT, payload)
    write_json(directory / SETTINGS, {**settings, "hidden": net.config.hidden, "layers": net.config.layers,
                                      "lr": float(lr), "state_floats_per_parameter": net.config.state_floats + 2})


def load_l2o(directory: str | Path) -> tuple[CoordinateLSTM, float]:
    """The network and its trained step size from ``directory`` (a one-line error if it is not one)."""
    directory = Path(directory)
    path = directory / CHECKPOINT
    if not path.is_file():
        raise ResultError(f"{directory}: no {CHECKPOINT}; pass the --out directory of 'dsr-l2o l2o train'")
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # not a checkpoint, or one holding more than tensors
        raise ResultError(f"{path}: not a learned-optimizer checkpoint ({type(err).__name__}); retrain it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ResultError(f"{path}: not a format-{FORMAT} learned-optimizer checkpoint; retrain it")
    hidden, layers, lr = data.get("hidden"), data.get("layers"), data.get("lr")
    if not (isinstance(hidden, int) and 0 < hidden <= 1024 and isinstance(layers, int) and 0 < layers <= 8):
        raise ResultError(f"{path}: hidden/layers missing or out of range; retrain it")
    if not isinstance(lr, float) or not math.isfinite(lr) or lr <= 0:
        raise ResultError(f"{path}: lr must be a positive number; retrain it")
    net = CoordinateLSTM(LSTMConfig(hidden, layers))
    state = data.get("state_dict")
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ResultError(f"{path}: weights do not fit a {layers}x{hidden} LSTM ({str(err).splitlines()[0]})") from None
    net.eval()
    return net, lr


def read_settings(directory: str | Path) -> dict:
    """``DIR/l2o.json`` (an empty dict if absent)."""
    path = Path(directory) / SETTINGS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
