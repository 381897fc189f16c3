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
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.14, top=0.97)  # fixed: tight_layout draws it twice
    written.append(_save(fig, directory / "meta_loss.png"))
    plt.close(fig)

    slots = sorted(records[-1]["weights"], key=_slot_order)
    fig = _weights_figure(plt, records, slots, labels or {})
    written.append(_save(fig, directory / "operator_weights.png"))
    plt.close(fig)
    return written


_COLS, _GAP_X, _GAP_Y = 4, 0.1, 0.38
"""Panels per row, and the space between panels (in panel widths and heights)."""


def _weights_figure(plt, records: list[dict], slots: list[str], labels: dict[str, tuple[str, ...]]):
    """One panel per slot, each a frame holding its choices' weights (0 to 1, bottom to top) over the
    meta-steps (left to right); the leading choice is drawn thicker and each choice that reaches
    0.15 is named in its colour. The panels are drawn in one set of axes: a grid of matplotlib
    axes, with their ticks, takes most of a tiny search's time."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    rows = (len(slots) + _COLS - 1) // _COLS
    inches = 2.6 * rows
    fig = plt.figure(figsize=(4 * _COLS, inches))
    ax = fig.add_axes((0.02, 0.25 / inches, 0.97, 1 - 0.75 / inches))
    ax.set_axis_off()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    steps = [r["step"] for r in records]
    span = max(steps[-1] - steps[0], 1)
    xs = [(s - steps[0]) / span for s in steps]
    for i, slot in enumerate(slots):
        row, col = divmod(i, _COLS)
        x0, y0 = col * (1 + _GAP_X), (rows - 1 - row) * (1 + _GAP_Y)
        series = list(zip(*[r["weights"][slot] for r in records]))
        final = records[-1]["weights"][slot]
        names = labels.get(slot, [str(j) for j in range(len(series))])
        ax.add_patch(Rectangle((x0, y0), 1, 1, fill=False, lw=0.6, ec="0.55"))
        ax.plot([x0, x0 + 1], [y0 + 0.5, y0 + 0.5], lw=0.4, color="0.85")
        ax.add_collection(LineCollection(
            [[(x0 + x, y0 + y) for x, y in zip(xs, ys)] for ys in series],
            colors=[colours[j % len(colours)] for j in range(len(series))],
            linewidths=[1.4 if final[j] == max(final) else 0.6 for j in range(len(series))]))
        named = [j for j, ys in enumerate(series) if max(ys) >= 0.15]
        for k, j in enumerate(named):
            ax.text(x0 + 0.02, y0 + 0.95 - 0.1 * k, names[j], color=colours[j % len(colours)], fontsize=6, va="top")
        ax.text(x0, y0 + 1.03, _title(slot), fontsize=9, va="bottom")
        if col == 0:
            ax.text(x0 - 0.015, y0, "0", fontsize=7, ha="right", va="bottom")
            ax.text(x0 - 0.015, y0 + 1, "1", fontsize=7, ha="right", va="top")
        if i + _COLS >= len(slots):  # the lowest panel of its column
            ax.text(x0, y0 - 0.03, str(steps[0]), fontsize=7, va="top")
            ax.text(x0 + 1, y0 - 0.03, f"meta-step {steps[-1]}", fontsize=7, ha="right", va="top")
    ax.set_xlim(-0.06, _COLS * (1 + _GAP_X) - _GAP_X + 0.01)
    ax.set_ylim(-0.12, rows * (1 + _GAP_Y) - _GAP_Y + 0.2)
    fig.suptitle("operator weights (softmax at the current temperature) over meta-steps", y=1 - 0.12 / inches)
    return fig


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
