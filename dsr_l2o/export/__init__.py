"""Exports of a search result: a standalone torch optimizer, LaTeX, a Markdown report, JSON."""

from __future__ import annotations

import json

from .bundle import ResultBundle, config_summary, read_result

FORMATS = ("torch", "latex", "markdown", "json")


def export_text(bundle: ResultBundle, fmt: str, plot_dir: str = "plots", class_name: str | None = None) -> str:
    """The result in format ``fmt`` (one of :data:`FORMATS`) as text."""
    from ..errors import ConfigError

    if fmt == "torch":
        from .torch_source import torch_source

        provenance = [("Grammar", bundle.formula.grammar.name), ("Search result", bundle.name)]
        settings = ", ".join(f"{k}={v}" for k, v in config_summary(bundle.result))
        if settings:
            provenance.append(("Search settings", settings))
        if bundle.result.created:
            provenance.append(("Found", bundle.result.created))
        return torch_source(bundle.formula, class_name or "DiscoveredOptimizer",
                            bundle.lr if bundle.lr is not None else 1e-3, provenance)
    if fmt == "latex":
        from .latex import latex_document

        return latex_document(bundle.formula, bundle.lr)
    if fmt == "markdown":
        from .markdown import markdown_report

        return markdown_report(bundle, plot_dir)
    if fmt == "json":
        from .json_export import json_export

        return json.dumps(json_export(bundle), indent=1, allow_nan=False) + "\n"
    raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "ResultBundle", "config_summary", "export_text", "read_result"]
