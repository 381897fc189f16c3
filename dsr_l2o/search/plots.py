"""Plots of a search: meta-loss and operator weights over meta-steps (matplotlib, PNG)."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path


def plot_metrics(metrics_path: Path, directory: Path, labels: dict[str, tuple[str, ...]] | None = None) -> list[Path]:
    """Write ``meta_loss.png`` and ``operator_weights.png`` from ``metrics.jsonl``.

    ``labels`` names the choices of each slot (``{"terminal3": ("g", "w", ...)}``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    records = [json.loads(line) for line in Path(metrics_path).read_text(encoding="utf-8").splitlines() if line]
    if not records:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    steps = [r["step"] for r in records if r.get("meta_loss") is not None]
    losses = [r["meta_loss"] for r in records if r.get("meta_loss") is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="meta-loss")
    if len(losses) >= 20:
        k = 20
        smooth = [sum(losses[i - k:i]) / k for i in range(k, len(losses) + 1)]
        ax.plot(steps[k - 1:], smooth, lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("meta-step")
    ax.set_ylabel("mean log loss - log initial loss")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, directory / "meta_loss.png"))
    plt.close(fig)

    slots = sorted(records[-1]["weights"], key=_slot_order)
    labels = labels or {}
    cols = 4
    rows = (len(slots) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False, sharex=True, sharey=True)
    xs = [r["step"] for r in records]
    for ax, slot in zip(axes.flat, slots):
        series = list(zip(*[r["weights"][slot] for r in records]))
        final = records[-1]["weights"][slot]
        for i, ys in enumerate(series):
            name = labels.get(slot, [str(j) for j in range(len(series))])[i]
            ax.plot(xs, ys, lw=1.2 if final[i] == max(final) else 0.6, label=name if max(ys) >= 0.15 else None)
        ax.set_title(_title(slot), fontsize=9, y=1.0)  # a fixed y skips matplotlib's costly title placement
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 0.5, 1])
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[len(slots):]:
        ax.axis("off")
    inches = 2.6 * rows
    fig.suptitle("operator weights (softmax at the current temperature) over meta-steps", y=1 - 0.12 / inches)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.3 / inches, top=1 - 0.6 / inches, hspace=0.35, wspace=0.08)
    written.append(_save(fig, directory / "operator_weights.png"))
    plt.close(fig)
    return written


def _slot_order(name: str):
    kinds = ["node_unary", "binary", "leaf_unary", "terminal"]
    kind = next(k for k in kinds if name.startswith(k) and name[len(k):].isdigit())
    return int(name[len(kind):]), kinds.index(kind)


def _title(slot: str) -> str:
    index, kind = _slot_order(slot)
    where = "root" if index == 0 else f"node {index}"
    return {0: f"{where}: unary", 1: f"{where}: binary", 2: f"leaf {index}: unary",
            3: f"leaf {index}: terminal"}[kind]


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
