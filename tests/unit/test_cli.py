"""The command line's own errors: clear messages and exit codes, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.cli import main


def test_a_command_that_needs_a_worker_says_so_when_none_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DMR_BROKER_URL", "memory://")
    monkeypatch.setenv("DMR_RESULT_BACKEND", "cache+memory://")
    monkeypatch.setenv("DMR_CELERY__RESULT_TIMEOUT", "0.3")
    assert main(["models"]) == 1
    assert "no worker answered within 0.3 s" in capsys.readouterr().err


def test_register_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="cannot read"):
        main(["register", str(tmp_path / "absent.json"), "--name", "Product"])


def test_a_bad_setting_is_one_line_naming_its_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DMR_AUDIT__CODEC", "lzma")
    assert main(["models"]) == 2
    assert "audit.codec" in capsys.readouterr().err
