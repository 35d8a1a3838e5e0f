"""Shared fixtures: keep every test's files (MLflow store, runs/) in a tmp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Tests run in a tmp working dir so the default runs/ store never touches the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    yield


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def shared_dir() -> Path:
    return SHARED


def pytest_report_header(config):
    return f"gpengine tests; shared data: {SHARED if SHARED.is_dir() else 'absent'}; cpus: {os.cpu_count()}"
