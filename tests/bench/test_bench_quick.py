"""The throughput benchmark runs and reports every kind and method (``python -m bench throughput --quick``).

Timings are never checked. Other sections (latency, memory) have their own tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.frames import KIND_NAMES
from bench.throughput import METHODS

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_reports_every_kind_and_method(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "throughput", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())

    machine = report["machine"]
    assert machine["cpu_model"]
    assert machine["python"]
    assert {"orjson", "msgspec"} <= set(machine["versions"])  # cryptofeed only with the bench extra

    section = report["sections"]["throughput"]
    assert section["methods"] == list(METHODS)
    assert set(section["kinds"]) == set(KIND_NAMES)
    for name, kind in section["kinds"].items():
        for method in ("orjson", "msgspec", "adapter", "pipeline"):
            assert kind["methods"][method]["median_fps"] > 0, (name, method)
        peer = kind["cryptofeed"]
        if peer["supported"]:
            assert kind["methods"]["cryptofeed"]["median_fps"] > 0, name
            assert kind["ratios"]["adapter_vs_cryptofeed"] is not None, name
        else:
            assert "cryptofeed" not in kind["methods"], name
            assert peer["note"], f"{name}: no reason given for cryptofeed not parsing it"
        assert kind["outputs_per_pass"]["adapter_events"] > 0, name
        assert kind["outputs_per_pass"]["pipeline_published"] > 0, name
        assert kind["ratios"]["pipeline_vs_msgspec_floor"] is not None, name
    assert set(section["summary"]["missed"]) <= {"adapter_vs_cryptofeed", "pipeline_vs_floor"}
    for name in KIND_NAMES:
        assert name in proc.stdout, f"{name} missing from the printed table"
