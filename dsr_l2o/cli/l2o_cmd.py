"""``dsr-l2o l2o train --out DIR``: meta-train a coordinate-wise LSTM optimizer."""

from __future__ import annotations

import sys

import click


@click.group()
def l2o():
    """Neural learned optimizers (a teacher for 'dsr-l2o distil l2o:DIR')."""


@l2o.command()
@click.option("--tasks", default="mixed", show_default=True, help="Task family to meta-train on (the search's).")
@click.option("--meta-steps", default=300, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Truncations (meta-steps) to train.")
@click.option("--unroll", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Steps per truncation.")
@click.option("--horizon", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Steps per task.")
@click.option("--meta-lr", default=5e-3, show_default=True, type=click.FloatRange(0, None, min_open=True),
              help="Adam step size of the meta-training.")
@click.option("--hidden", default=20, show_default=True, type=click.IntRange(1, 256), help="LSTM units per layer.")
@click.option("--layers", default=2, show_default=True, type=click.IntRange(1, 4), help="LSTM layers.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--out", default="runs/l2o", show_default=True, type=click.Path(file_okay=False),
              help="Directory for l2o.pt and l2o.json.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def train(tasks, meta_steps, unroll, horizon, meta_lr, hidden, layers, seed, out, quiet):
    """Meta-train a coordinate-wise LSTM optimizer (RNNprop inputs) by truncated back-propagation."""
    from ..l2o import L2OTrainConfig, train_and_save

    config = L2OTrainConfig(tasks=tasks, meta_steps=meta_steps, unroll=unroll, horizon=horizon, meta_lr=meta_lr,
                            hidden=hidden, layers=layers, seed=seed)
    bar = None if quiet else click.progressbar(length=meta_steps, label="meta-training", file=sys.stderr,
                                               show_pos=True, width=24)
    last = {"loss": None}

    def on_step(record):
        if bar is None:
            return
        if record["meta_loss"] is not None:
            last["loss"] = record["meta_loss"]
        bar.update(1)
        if not sys.stderr.isatty() and (record["step"] % 25 == 0 or record["step"] == meta_steps - 1):
            loss = "skipped" if last["loss"] is None else f"{last['loss']:+.3f}"
            click.echo(f"meta-step {record['step'] + 1}/{meta_steps}: loss {loss} lr {record['lr']:.4g}", err=True)

    result = train_and_save(config, out, on_step)
    if bar is not None:
        bar.render_finish()
    click.echo(f"trained:  {result.meta_steps} meta-steps, {result.episodes} tasks, {result.seconds:.0f} s")
    click.echo(f"lr:       {result.lr:.4g}")
    click.echo(f"state:    {result.net.config.state_floats + 2} floats per parameter "
               f"({result.net.config.state_floats} LSTM hidden + cell, 2 moving averages)")
    click.echo(f"written:  {out}/l2o.pt, {out}/l2o.json; distil it with: dsr-l2o distil l2o:{out}")
