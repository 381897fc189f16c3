"""``dsr-l2o search [GRAMMAR_YAML] [--config FILE] [--tasks ...] [--meta-steps N] ...``."""

from __future__ import annotations

import click


@click.command()
@click.argument("grammar_yaml", required=False, type=click.Path(dir_okay=False))
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of search settings.")
@click.option("--tasks", help="Training task family, e.g. mixed or quadratics+logreg.")
@click.option("--validation-tasks", help="Comma-separated held-out tasks used to pick the formula.")
@click.option("--meta-steps", type=int, help="Number of meta-steps (truncations).")
@click.option("--depth", type=int, help="Depth of the relaxed expression tree.")
@click.option("--seed", type=int, help="Random seed (CPU runs are deterministic for a seed).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to meta-train.")
@click.option("--meta-batch", type=int, help="Tasks per meta-step, their meta-gradients averaged (split over --nproc).")
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Meta-train in N local processes with torch.distributed (docs/scaling.md).")
@click.option("--workers", help="Processes that tune the candidates, a task each: auto (one per CPU core) or N "
                                "[default: auto]; the result does not depend on it.")
@click.option("--grow/--no-grow", default=None,
              help="Also try one-term corrections of the best candidate, ranked on hard quadratics (the grow "
                   "stage) [default: off, from searches/default.yaml].")
@click.option("--out", default="runs/search", show_default=True, type=click.Path(file_okay=False),
              help="Result directory.")
@click.option("--resume", is_flag=True, help="Continue the search checkpointed in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def search(grammar_yaml, config_file, tasks, validation_tasks, meta_steps, depth, seed, device, meta_batch, nproc,
           workers, grow, out, resume, quiet):
    """Search GRAMMAR_YAML (default: grammars/mars.yaml, as searches/default.yaml says) for an update rule.

    Meta-trains a relaxed expression over the grammar on the task family, reads off its most likely
    formulas, scores them against tuned Adam on the validation tasks (close ones are decided by
    more seeds, then simplicity, then tasks of the training family), names the chosen formula
    against published rules and writes the result to --out.
    """
    from ..workers import workers_flag

    validation = [t.strip() for t in validation_tasks.split(",") if t.strip()] if validation_tasks else None
    kwargs = dict(grammar_yaml=grammar_yaml, config_file=config_file, out=out, resume=resume, quiet=quiet,
                  tasks=tasks, validation_tasks=validation, meta_steps=meta_steps, depth=depth, seed=seed,
                  device=device, meta_batch=meta_batch, grow=grow,
                  workers=workers_flag(workers))
    if nproc != 1:
        from ..search.launch import launch

        launch(nproc, one_process, kwargs)
    else:
        one_process(**kwargs)


def one_process(grammar_yaml, config_file, out, resume, quiet, **settings):
    """The search in this process (one of several under torchrun or --nproc: only process 0 prints)."""
    from ..search import search as run_search
    from ..search.distributed import env_rank
    from .progress import SearchProgress

    with SearchProgress(quiet=quiet or env_rank() != 0) as progress:
        result = run_search(grammar_yaml, config=config_file, out=out, resume=resume, report=progress, **settings)
    if result is None:
        return
    click.echo(f"formula:  {result.formula.text}")
    click.echo(f"lr:       {result.lr}")
    ratio = result.validation.score_ratio_to_adam if result.validation else None
    if ratio is not None:
        click.echo(f"validation score / tuned Adam (geometric mean over tasks): {ratio:.3f}")
    click.echo(f"written:  {out}/result.json")
