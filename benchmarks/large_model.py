"""A found rule at scale: a 10M+ parameter character-level transformer LM, committed rule vs tuned AdamW.

Corpus: the Python standard library's own ``*.py`` files (bytes as tokens, vocabulary 256), read
from this interpreter's installation; files are split by name into train (most) and held-out
validation files, so no download is needed. Model: a pre-norm causal transformer
(``torch.nn.TransformerEncoderLayer``), 6 layers of width 384 (10.8M parameters).

Both optimizers train from the same initialisation on the same batches for the same number of
steps, with the gradient norm clipped at 1. The committed rule is read from
``searches/default/result.json`` (through ``dsr_l2o.result.load_result``) and runs as
``SymbolicOptimizer``. Both lrs are tuned on a *separate short run* (another initialisation seed
and batch stream, a third of the steps; best mean training loss over its last quarter), never on
the reported curves: AdamW's over ``ADAMW_LRS``, the rule's over ``RULE_LR_FACTORS`` times its lr
on the small tasks. Reported: training loss every step, validation loss on
fixed held-out batches every ``--eval-every`` steps, wall time, and the optimizer state bytes
(every tensor in ``optimizer.state`` after training; the state is allocated once, so this is also
its peak). Writes ``benchmarks/large_model.json`` and ``.md`` and ``docs/img/large-model.png``.

Usage: ``python benchmarks/large_model.py [--device cpu|cuda] [--steps 100] [--batch 4] [--context 64] [--threads 1]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sysconfig
import time
from pathlib import Path

import torch
from torch import nn

from dsr_l2o.atomic import atomic_path, write_json, write_text
from dsr_l2o.optimizer import SymbolicOptimizer
from dsr_l2o.result import load_result
from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
ADAMW_LRS = (1e-4, 3e-4, 1e-3, 3e-3)


def corpus() -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation byte streams from the standard library's ``*.py`` files."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    if len(files) < 20:
        raise SystemExit(f"found only {len(files)} standard-library files under {sysconfig.get_paths()['stdlib']}")
    val_files = files[::10]
    train_files = [f for f in files if f not in val_files]

    def stream(paths):
        data = b"\n".join(p.read_bytes() for p in paths)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return stream(train_files), stream(val_files)


class CharTransformer(nn.Module):
    """A causal pre-norm transformer over bytes."""

    def __init__(self, width=384, layers=6, heads=6, context=64):
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.position = nn.Parameter(torch.zeros(context, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 256)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens):
        n = tokens.shape[1]
        x = self.embed(tokens) + self.position[:n]
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=tokens.device)
        return self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))


def batches(data, batch, context, seed):
    gen = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(data) - context - 1, (batch,), generator=gen)
        idx = starts[:, None] + torch.arange(context + 1)
        chunk = data[idx]
        yield chunk[:, :-1], chunk[:, 1:]


def loss_of(model, x, y):
    logits = model(x)
    return nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))


def state_bytes(opt) -> int:
    return sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
               if isinstance(v, torch.Tensor) and v.dim() > 0)


def train(make_optimizer, data, val_batches, args, seed, device, evaluate=True):
    """Train a fresh model (init seed ``seed``) for ``args.steps``; returns the curves."""
    torch.manual_seed(seed)
    model = CharTransformer(context=args.context).to(device)
    opt = make_optimizer(model.parameters())
    stream = batches(data, args.batch, args.context, seed=1000 + seed)
    train_loss, val_loss = [], []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = (t.to(device) for t in next(stream))
        loss = loss_of(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        value = loss.item()
        train_loss.append(value if math.isfinite(value) else float("nan"))
        if evaluate and (step % args.eval_every == 0 or step == args.steps):
            val_loss.append((step, validate(model, val_batches, device)))
    return {"train_loss": train_loss, "val_loss": val_loss, "seconds": time.perf_counter() - start,
            "state_bytes": state_bytes(opt), "params": sum(p.numel() for p in model.parameters())}


@torch.no_grad()
def validate(model, val_batches, device) -> float:
    model.eval()
    losses = [loss_of(model, x.to(device), y.to(device)).item() for x, y in val_batches]
    model.train()
    return statistics.fmean(losses)


def tail_mean(values) -> float:
    tail = values[-max(1, len(values) // 4):]
    return statistics.fmean(tail) if all(math.isfinite(v) for v in tail) else float("inf")


RULE_LR_FACTORS = (1e-3, 3e-3, 1e-2, 3e-2)
"""The committed rule's lrs on the short run, as factors of its lr on the small tasks (Adam's is 0.1
there and 3e-4 here: a transformer needs far smaller steps than the suite's tasks, for every rule)."""


def tune_lr(make, lrs, label, data, val_batches, args, device) -> tuple[float, dict]:
    """The lr of ``lrs`` with the lowest late training loss on a separate short run (seed 1)."""
    short = argparse.Namespace(**{**vars(args), "steps": max(10, args.steps // 3)})
    sweep = {}
    for lr in lrs:
        run = train(lambda ps, lr=lr: make(ps, lr), data, val_batches, short, seed=1, device=device, evaluate=False)
        sweep[lr] = tail_mean(run["train_loss"])
        print(f"  sweep {label} lr {lr:g}: late train loss {sweep[lr]:.4f}", flush=True)
    return min(sweep, key=sweep.get), {f"{k:g}": v for k, v in sweep.items()}


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, run in results.items():
        losses = run["train_loss"]
        window = 10
        smooth = [statistics.fmean(losses[max(0, i - window + 1): i + 1]) for i in range(len(losses))]
        left.plot(range(1, len(losses) + 1), smooth, label=name)
        right.plot([s for s, _ in run["val_loss"]], [v for _, v in run["val_loss"]], marker="o", label=name)
    left.set(xlabel="step", ylabel="training loss (nats/byte, 10-step mean)", title="training")
    right.set(xlabel="step", ylabel="validation loss (nats/byte)", title="held-out stdlib files")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def to_markdown(summary) -> str:
    lines = [
        "# A found rule at scale: 10M-parameter character transformer on the Python standard library",
        "",
        "Written by `benchmarks/large_model.py` (its docstring defines the setup).",
        f"Date: {summary['date']}. Device: `{summary['device']}`. Machine: {summary['machine']}.",
        f"Model: {summary['params']:,} parameters (6 layers, width 384, context {summary['context']}); "
        f"batch {summary['batch']} x {summary['context']} bytes; {summary['steps']} steps; gradient norm clipped at 1.",
        f"Corpus: {summary['train_bytes']:,} training bytes, {summary['val_bytes']:,} held-out bytes "
        f"(every 10th stdlib file), validation on {summary['val_batches']} fixed batches of {summary['val_batch']} sequences.",
        f"Committed rule: `{summary['rule']}` (from `searches/default/result.json`, lr {summary['committed_lr']:g} on "
        f"the small tasks) at lr {summary['rule_lr']:g}, and AdamW (weight decay 0.01) at lr {summary['adamw_lr']:g}, "
        "each chosen on a separate short run (another seed and batch stream, a third of the steps; late training "
        f"loss by lr: rule {', '.join(f'{k}: {v:.3f}' for k, v in summary['rule_sweep'].items())}; AdamW "
        f"{', '.join(f'{k}: {v:.3f}' for k, v in summary['adamw_sweep'].items())}).",
        "",
        "| optimizer | final train loss (last 10% mean) | final validation loss | optimizer state MB | wall s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, run in summary["runs"].items():
        last = run["train_loss"][-max(1, len(run["train_loss"]) // 10):]
        lines.append(f"| {name} | {statistics.fmean(last):.4f} | {run['val_loss'][-1][1]:.4f} | "
                     f"{run['state_bytes'] / 1e6:.1f} | {run['seconds']:.0f} |")
    lines += ["", "Validation loss by step:", "",
              "| step | " + " | ".join(summary["runs"]) + " |", "|---:|" + "---:|" * len(summary["runs"])]
    steps = [s for s, _ in next(iter(summary["runs"].values()))["val_loss"]]
    for i, step in enumerate(steps):
        lines.append(f"| {step} | " + " | ".join(f"{run['val_loss'][i][1]:.4f}" for run in summary["runs"].values()) + " |")
    lines += ["", "![loss curves](../docs/img/large-model.png)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--val-batches", type=int, default=2)
    parser.add_argument("--val-batch", type=int, default=16, help="sequences per validation batch")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady on a shared machine)")
    parser.add_argument("--result", default=str(ROOT / "searches" / "default"), help="a search's --out directory")
    parser.add_argument("--out", default=str(Path(__file__).with_name("large_model.md")))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "img" / "large-model.png"))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    committed = load_result(args.result)
    train_data, val_data = corpus()
    gen_val = batches(val_data, args.val_batch, args.context, seed=7)
    val_batches = [next(gen_val) for _ in range(args.val_batches)]
    print("tuning AdamW and the committed rule on a separate short run", flush=True)
    adamw_lr, sweep = tune_lr(lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.01), ADAMW_LRS, "AdamW",
                              train_data, val_batches, args, device)
    rule_lrs = tuple(float(f"{committed.lr * f:.3g}") for f in RULE_LR_FACTORS)
    rule_lr, rule_sweep = tune_lr(lambda ps, lr: SymbolicOptimizer(ps, committed.formula, lr=lr), rule_lrs,
                                  "committed rule", train_data, val_batches, args, device)
    runs = {}
    makers = {
        f"AdamW (lr {adamw_lr:g})": lambda ps: torch.optim.AdamW(ps, lr=adamw_lr, weight_decay=0.01),
        f"committed rule (lr {rule_lr:g})": lambda ps: SymbolicOptimizer(ps, committed.formula, lr=rule_lr),
    }
    for name, make in makers.items():
        print(f"training with {name}", flush=True)
        runs[name] = train(make, train_data, val_batches, args, seed=0, device=device)
        print(f"  final validation loss {runs[name]['val_loss'][-1][1]:.4f} in {runs[name]['seconds']:.0f} s", flush=True)
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    summary = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": str(device),
        "machine": f"{cpu_name()}, torch threads {torch.get_num_threads()}{gpu}, torch {torch.__version__}",
        "params": next(iter(runs.values()))["params"], "steps": args.steps, "batch": args.batch,
        "context": args.context, "train_bytes": len(train_data), "val_bytes": len(val_data),
        "val_batches": args.val_batches, "val_batch": args.val_batch, "rule": committed.formula.text, "rule_lr": rule_lr,
        "committed_lr": committed.lr, "rule_sweep": rule_sweep, "adamw_lr": adamw_lr, "adamw_sweep": sweep, "runs": runs,
    }
    out = Path(args.out)
    write_json(out.with_suffix(".json"), summary)
    plot(runs, Path(args.plot))
    text = to_markdown(summary)
    write_text(out, text)
    print(text)


if __name__ == "__main__":
    main()
