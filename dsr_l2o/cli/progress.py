"""The search's progress display: a bar with meta-step, meta-loss, temperature and formula, then
one per scoring round (validation tasks tuned)."""

from __future__ import annotations

import sys

import click


class SearchProgress:
    """A ``report(event, data)`` callback for :func:`dsr_l2o.search.search` that draws on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.bar, self.last = quiet, None, ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close()
        return False

    def _close(self):
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None

    def __call__(self, event: str, data) -> None:
        if self.quiet:
            return
        if event == "start":
            self._close()
            self.bar = click.progressbar(length=data.meta_steps, label="meta-training", file=sys.stderr,
                                         show_pos=True, item_show_func=lambda _: self.last, width=24)
            self.bar.render_progress()
        elif event == "meta_step" and self.bar is not None:
            loss = "skipped" if data["meta_loss"] is None else f"{data['meta_loss']:+.3f}"
            formula = data["formula"] if len(data["formula"]) <= 60 else data["formula"][:57] + "..."
            self.last = f"loss {loss} T {data['temperature']:.3f} {formula}"
            self.bar.pos = data["step"]
            self.bar.update(1)
            if sys.stderr.isatty():
                return
            if data["step"] % 25 == 0 or data["step"] == self.bar.length - 1:
                click.echo(f"meta-step {data['step'] + 1}/{self.bar.length}: {self.last}", err=True)
        elif event == "tasks":
            done, total = data
            if self.bar is None:
                self.bar = click.progressbar(length=total, label="tuning", file=sys.stderr, show_pos=True, width=24)
                self.bar.render_progress()
            self.bar.update(done - self.bar.pos)
            if done >= total:
                self._close()
        elif event == "phase":
            self._close()
            click.echo(str(data), err=True)
