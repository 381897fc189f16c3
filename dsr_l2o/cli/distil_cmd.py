"""``dsr-l2o distil TEACHER [GRAMMAR_YAML] [--tasks ...] [--out DIR]``."""

from __future__ import annotations

import click


@click.command()
@click.argument("teacher")
@click.argument("grammar_yaml", required=False, type=click.Path(dir_okay=False))
@click.option("--tasks", default="mixed", show_default=True, help="Task family the teacher trains on.")
@click.option("--episodes", default=8, show_default=True, type=click.IntRange(1, 1000), help="Tasks sampled.")
@click.option("--steps", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Teacher steps per task.")
@click.option("--lr", default=1e-2, show_default=True, type=click.FloatRange(0, None, min_open=True),
              help="The teacher's step size.")
@click.option("--iterations", default=300, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Regression steps of the relaxation.")
@click.option("--depth", default=2, show_default=True, type=click.IntRange(1, 4), help="Depth of the relaxed tree.")
@click.option("--top-k", default=8, show_default=True, type=click.IntRange(1, 100), help="Formulas read off and refitted.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--out", default="runs/distil", show_default=True, type=click.Path(file_okay=False),
              help="Result directory.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def distil(teacher, grammar_yaml, tasks, episodes, steps, lr, iterations, depth, top_k, seed, out, quiet):
    """Distil TEACHER into a formula of GRAMMAR_YAML (default: grammars/default.yaml).

    TEACHER is a baseline (sgd, momentum, nesterov, rmsprop, adam, adamw, lion, powersign,
    addsign) or a formula. Its updates on sampled tasks are recorded and a relaxed formula is
    regressed on them; the result directory works with evaluate, export and docs.
    """
    from ..distill import distil as run_distil

    log = None if quiet else (lambda text: click.echo(text, err=True))
    result = run_distil(teacher, grammar_yaml, out=out, tasks=tasks, episodes=episodes, steps=steps, lr=lr,
                        iterations=iterations, depth=depth, top_k=top_k, seed=seed, log=log)
    click.echo(f"formula:  {result.formula.text}")
    click.echo(f"lr:       {result.lr}")
    click.echo(f"R^2:      {result.r2:.6f} of the teacher's update energy explained")
    click.echo(f"written:  {out}/result.json")
