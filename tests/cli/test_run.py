"""`streamer run`: a bad config value stops start-up with the key, the value and what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_bad_config_value_stops_start_up_naming_key_value_and_file(tmp_path: Path):
    cfg = tmp_path / "streamer.yaml"
    cfg.write_text("rules:\n  large_liquidation:\n    min_usd: lots\n")
    proc = subprocess.run([sys.executable, "-m", "streamer", "run", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"streamer run: config error in {cfg}: rules.large_liquidation.min_usd = 'lots': expected `float`, got `str`"
    )


def test_bad_environment_override_names_the_variable(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "streamer", "run"], capture_output=True, text=True, timeout=60,
                          check=False, env={"STREAMER__HTTP__PORT": "70000", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "environment variable STREAMER__HTTP__PORT" in proc.stderr
    assert "http.port = 70000" in proc.stderr
