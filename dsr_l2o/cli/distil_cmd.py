"""``dsr-l2o distil TEACHER [GRAMMAR_YAML] [--tasks ...] [--out DIR]``."""

from __future__ import annotations

import sys

import click


def parse_teacher_args(pairs) -> dict:
    """``KEY=VALUE`` pairs as keyword arguments (values read as YAML scalars or lists: 0.9, [0.9, 0.99], true)."""
    import yaml

    from ..errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--teacher-arg {pair!r}: write KEY=VALUE, e.g. --teacher-arg alpha=0.9")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--teacher-arg {pair!r}: the value is not a number, list or word") from None
        if isinstance(parsed, list):
            parsed = tuple(parsed)
        if not isinstance(parsed, (int, float, bool, str, tuple)) and parsed is not None:
            raise ConfigError(f"--teacher-arg {pair!r}: the value must be a number, list, true/false or a word")
        out[key.strip()] = parsed
    return out


@click.command()
@click.argument("teacher")
@click.argument("grammar_yaml", required=False, type=click.Path(dir_okay=False))
@click.option("--teacher-arg", "teacher_args", multiple=True, metavar="KEY=VALUE",
              help="Keyword argument of a module:Class teacher (repeatable), e.g. alpha=0.9.")
@click.option("--tasks", default="mixed", show_default=True, help="Task family the teacher trains on.")
@click.option("--episodes", default=8, show_default=True, type=click.IntRange(1, 1000), help="Tasks sampled.")
@click.option("--heldout", default=2, show_default=True, type=click.IntRange(0, 999),
              help="Episodes held out to verify exactness.")
@click.option("--steps", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Teacher steps per task.")
@click.option("--lr", default=1e-2, show_default=True, type=click.FloatRange(0, None, min_open=True),
              help="The teacher's step size.")
@click.option("--method", default="enumerate", show_default=True, type=click.Choice(["enumerate", "relaxation"]),
              help="Enumerate small formulas and composites, or regress the soft relaxation.")
@click.option("--max-size", default=5, show_default=True, type=click.IntRange(1, 6),
              help="Largest formula enumerated (nodes); composites combine two of them.")
@click.option("--no-suggest", is_flag=True, help="Do not try extra operands when no formula is exact.")
@click.option("--iterations", default=300, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Regression steps of the relaxation (--method relaxation).")
@click.option("--depth", default=2, show_default=True, type=click.IntRange(1, 4),
              help="Depth of the relaxed tree (--method relaxation).")
@click.option("--top-k", default=8, show_default=True, type=click.IntRange(1, 100),
              help="Formulas read off and refitted (--method relaxation).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--out", default="runs/distil", show_default=True, type=click.Path(file_okay=False),
              help="Result directory.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def distil(teacher, grammar_yaml, teacher_args, tasks, episodes, heldout, steps, lr, method, max_size, no_suggest,
           iterations, depth, top_k, seed, out, quiet):
    """Distil TEACHER into a formula of GRAMMAR_YAML (default: grammars/default.yaml).

    TEACHER is a baseline (sgd, momentum, nesterov, rmsprop, adam, adamw, lion, powersign,
    addsign), a torch.optim.Optimizer class as module:Class (with --teacher-arg), a learned
    optimizer as l2o:DIR (from 'dsr-l2o l2o train'), or a formula. Its updates on sampled tasks
    are recorded and the smallest formula that reproduces them exactly on held-out tasks is
    reported (else the best fit, and an operand the grammar may be missing). The result
    directory works with evaluate, export and docs.
    """
    from ..distill import distil as run_distil

    kwargs = parse_teacher_args(teacher_args)
    log = None if quiet else (lambda text: click.echo(text, err=True))
    bar = None if quiet else click.progressbar(length=episodes, label="recording", file=sys.stderr, show_pos=True,
                                               width=24)

    def on_episode(done, total):
        if bar is not None:
            bar.update(1)
            if done == total:
                bar.render_finish()

    result = run_distil(teacher, grammar_yaml, out=out, tasks=tasks, episodes=episodes, steps=steps, lr=lr,
                        iterations=iterations, depth=depth, top_k=top_k, seed=seed, log=log, method=method,
                        max_size=max_size, heldout=heldout, suggest=not no_suggest, teacher_kwargs=kwargs,
                        on_episode=on_episode)
    click.echo(f"formula:  {result.formula.text}")
    click.echo(f"lr:       {result.lr}")
    click.echo(f"R^2:      {result.r2:.9f} of the teacher's update energy explained")
    error = result.heldout_error if result.heldout_error is not None else float("nan")
    click.echo(f"exact:    {'yes' if result.exact else 'no'} (held-out relative error {error:.2g})")
    if not result.exact:
        click.echo(f"note:     {result.note}")
    click.echo(f"written:  {out}/result.json")
