"""The archive is on by default under the run directory; ``TICKFLEET_ARCHIVE=off`` builds
no recorder into the streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickfleet.config.settings import Settings
from tickfleet.wiring.stream import archive_spec, stream_config

pytestmark = pytest.mark.timeout(10)


def test_on_by_default_in_the_run_directory(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, underlyings="NIFTY,SENSEX")
    spec = archive_spec(settings)
    assert spec is not None
    assert spec.recorder.root == tmp_path / "archive"
    assert spec.recorder.flush_seconds == 60.0
    assert dict(spec.index_tokens) == {"NIFTY": 256265, "SENSEX": 265}
    assert stream_config(settings).archive == spec


def test_off_means_no_recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKFLEET_ARCHIVE", "off")
    monkeypatch.setenv("TICKFLEET_ARCHIVE_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()
    assert settings.effective_archive_dir == tmp_path / "elsewhere"
    assert archive_spec(settings) is None
    assert stream_config(settings).archive is None
