"""Files shipped with the package: the grammars and the search settings."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGES = {"grammars": "dsr_l2o.grammars", "searches": "dsr_l2o.search_configs"}


def data_path(folder: str, filename: str) -> Path:
    """A file shipped from the repository's ``grammars/`` or ``searches/`` folder.

    Installed, those folders are the packages ``dsr_l2o.grammars`` and ``dsr_l2o.search_configs``;
    in a source checkout (the package imported from the working tree) they sit beside it.
    """
    package = _PACKAGES[folder]
    checkout = Path(__file__).resolve().parent.parent / folder / filename
    if is_file(checkout):
        return checkout
    return Path(str(resources.files(package).joinpath(filename)))


def is_file(path: Path, directory: bool = False) -> bool:
    """``path.is_file()`` (or ``is_dir()``), False for names the OS rejects (too long, NUL bytes)."""
    try:
        return path.is_dir() if directory else path.is_file()
    except (OSError, ValueError):
        return False
