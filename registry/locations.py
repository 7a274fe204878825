"""Where settings and embedded data live, whatever the current directory.

Settings file, first found: `$DMR_SETTINGS`, `./settings.toml`, then `settings.toml` in the
per-user config directory (`~/.config/dmr/` on Linux, as platformdirs decides per system).
Embedded data (the SQLite database, the file broker, the SQLite results) live in one absolute
per-user data directory (`~/.local/share/dmr/` on Linux), or `$DMR_DATA_DIR`; so `dmr` run
from any directory finds the same data and the same workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import platformdirs

__all__ = [
    "config_dir",
    "data_dir",
    "embedded_urls",
    "find_settings_file",
    "settings_candidates",
]

APP_NAME = "dmr"


def config_dir() -> Path:
    """The per-user configuration directory."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir(environ: Mapping[str, str]) -> Path:
    """The directory of embedded data: `$DMR_DATA_DIR`, else the per-user data directory."""
    configured = environ.get("DMR_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def settings_candidates(environ: Mapping[str, str]) -> list[Path]:
    """The places a settings file is looked for, in order."""
    found = [Path(environ["DMR_SETTINGS"])] if environ.get("DMR_SETTINGS") else []
    return [*found, Path("settings.toml"), config_dir() / "settings.toml"]


def find_settings_file(environ: Mapping[str, str]) -> Path | None:
    """The settings file in effect: `$DMR_SETTINGS` (which must exist), else the first of
    `./settings.toml` and the per-user one that exists, else None (defaults only)."""
    if environ.get("DMR_SETTINGS"):
        return Path(environ["DMR_SETTINGS"])
    for candidate in settings_candidates(environ):
        if candidate.is_file():
            return candidate.resolve()
    return None


def embedded_urls(directory: Path) -> dict[str, str]:
    """The embedded default's database, broker and result URLs, all under `directory`."""
    return {
        "database": f"sqlite:///{directory / 'dmr.sqlite3'}",
        "broker": f"filesystem://{directory / 'broker'}",
        "results": f"db+sqlite:///{directory / 'results.sqlite3'}",
    }
