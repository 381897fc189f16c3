"""A neural learned optimizer to distil: a coordinate-wise LSTM (Andrychowicz et al. 2016, RNNprop
inputs of Lv et al. 2017) meta-trained like the search's rules (``dsr-l2o l2o train``), saved as
tensors only, and usable as a teacher (``dsr-l2o distil l2o:DIR``) or as a ``torch.optim.Optimizer``.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import load_l2o, read_settings, save_l2o
from .model import CoordinateLSTM, LSTMConfig
from .optimizer import L2OOptimizer
from .train import L2OTrainConfig, L2OTrainResult, train_l2o


def l2o_spec(directory: str | Path):
    """The learned optimizer in ``directory`` as an :class:`~dsr_l2o.evaluation.OptimizerSpec`."""
    from ..evaluation import OptimizerSpec

    net, _ = load_l2o(directory)
    return OptimizerSpec(f"l2o:{directory}", lambda params, lr: L2OOptimizer(params, net, lr=lr))


def train_and_save(config: L2OTrainConfig, out: str | Path, on_step=None) -> L2OTrainResult:
    """Meta-train (:func:`train_l2o`) and write ``out/l2o.pt`` and ``out/l2o.json``."""
    from ..errors import ConfigError

    out = Path(out)
    if (out / "l2o.pt").exists():
        raise ConfigError(f"{out} already holds a learned optimizer; choose another --out or remove it")
    result = train_l2o(config, on_step)
    save_l2o(out, result.net, result.lr, {
        "config": config.to_json(), "meta_steps": result.meta_steps, "episodes": result.episodes,
        "skipped": result.skipped, "seconds": round(result.seconds, 2), "final_meta_loss": result.final_meta_loss})
    return result


__all__ = ["CoordinateLSTM", "LSTMConfig", "L2OOptimizer", "L2OTrainConfig", "L2OTrainResult", "train_l2o",
           "train_and_save", "save_l2o", "load_l2o", "read_settings", "l2o_spec"]
