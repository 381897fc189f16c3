"""The LSTM learned optimizer: checkpoint round trip, optimizer wrapper, tiny train + distil via the CLI."""

import json

import pytest
import torch

from dsr_l2o.cli import main
from dsr_l2o.errors import ResultError
from dsr_l2o.l2o import CoordinateLSTM, L2OOptimizer, L2OTrainConfig, LSTMConfig, load_l2o, save_l2o, train_l2o
from dsr_l2o.result import load_result


def test_checkpoint_round_trip_loads_with_weights_only(tmp_path):
    net = CoordinateLSTM(LSTMConfig(hidden=5, layers=2))
    save_l2o(tmp_path, net, 0.02, {"note": "test"})
    raw = torch.load(tmp_path / "l2o.pt", weights_only=True)
    assert set(raw) == {"format", "hidden", "layers", "lr", "state_dict"}
    loaded, lr = load_l2o(tmp_path)
    assert lr == 0.02 and loaded.config == net.config
    for key, value in net.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert json.loads((tmp_path / "l2o.json").read_text())["state_floats_per_parameter"] == 2 * 2 * 5 + 2


def test_a_checkpoint_holding_code_or_junk_is_refused(tmp_path):
    (tmp_path / "l2o.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ResultError, match="not a learned-optimizer checkpoint"):
        load_l2o(tmp_path)
    torch.save({"format": 1, "hidden": 5, "layers": 1, "lr": 0.1, "state_dict": {"x": torch.zeros(2)}},
               tmp_path / "l2o.pt")
    with pytest.raises(ResultError, match="do not fit"):
        load_l2o(tmp_path)
    with pytest.raises(ResultError, match="no l2o.pt"):
        load_l2o(tmp_path / "missing")


def test_the_optimizer_keeps_lstm_state_per_coordinate_and_steps_along_the_net():
    net = CoordinateLSTM(LSTMConfig(hidden=3, layers=2))
    w = torch.nn.Parameter(torch.ones(4))
    opt = L2OOptimizer([w], net, lr=0.1)
    w.grad = torch.full((4,), 0.5)
    expected, _ = net.step(w.grad.clone(), net.init_state(4), 1)
    opt.step()
    assert torch.allclose(w.detach(), 1 - 0.1 * expected.detach())
    assert opt.state[w]["net"]["h"].shape == (2, 4, 3) and opt.state[w]["step"] == 1


def test_meta_training_lowers_the_meta_loss_of_a_tiny_lstm():
    config = L2OTrainConfig(tasks="quadratics", meta_steps=12, unroll=5, horizon=10, hidden=4, layers=1)
    losses = []
    result = train_l2o(config, on_step=lambda r: losses.append(r["meta_loss"]))
    assert result.meta_steps == 12 and len(losses) == 12 and all(x is not None for x in losses)
    assert result.lr > 0 and result.episodes >= 6


def test_tiny_l2o_train_then_distil_through_the_cli(tmp_path, capsys):
    teacher = tmp_path / "lstm"
    main(["l2o", "train", "--tasks", "quadratics", "--meta-steps", "4", "--unroll", "5", "--horizon", "10",
          "--hidden", "4", "--layers", "1", "--out", str(teacher), "--quiet"])
    assert (teacher / "l2o.pt").is_file() and "distil it with" in capsys.readouterr().out
    out = tmp_path / "distilled"
    main(["distil", f"l2o:{teacher}", "--tasks", "quadratics", "--episodes", "3", "--heldout", "1", "--steps", "20",
          "--no-suggest", "--out", str(out), "--quiet"])
    result = load_result(out)
    assert result.data["route"] == "distil" and result.data["teacher"].startswith("l2o:")
    assert result.data["r2"] > 0.5 and result.lr is not None
    assert "R^2" in capsys.readouterr().out

