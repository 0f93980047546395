"""The shipped Prometheus alert rules (config/prometheus/erpsync-alerts.yml) pass
``promtool check rules`` and their unit tests (``promtool test rules``), and every alert is tested.

CI installs Debian's ``prometheus`` package for ``promtool`` (see .ci/run); this test fails, never
skips, when the tool is missing.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RULES_DIR = ROOT / "config" / "prometheus"
RULES = RULES_DIR / "erpsync-alerts.yml"
RULES_TEST = RULES_DIR / "erpsync-alerts.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: install Debian's prometheus package (apt-get install -y prometheus)"
    return tool


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def _alert_names(text: str) -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)", text, flags=re.MULTILINE)


def test_rules_pass_promtool_check(promtool: str) -> None:
    done = _run(promtool, "check", "rules", str(RULES), cwd=RULES_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alert_names(RULES.read_text()))} rules found" in done.stdout


def test_rules_pass_their_unit_tests(promtool: str) -> None:
    done = _run(promtool, "test", "rules", RULES_TEST.name, cwd=RULES_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_changed_threshold_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: an unknown-mapping alert that waits 10 minutes breaks them."""
    text = RULES.read_text()
    broken = text.replace("expr: max by (kind, code) (erpsync_unknown_mapping) == 1\n",
                          "expr: max by (kind, code) (erpsync_unknown_mapping) == 1\n    for: 10m\n")
    assert broken != text
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    done = _run(promtool, "test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert done.returncode != 0
    assert "ErpsyncUnknownMapping" in done.stdout + done.stderr


def test_every_alert_has_a_firing_case() -> None:
    tests = RULES_TEST.read_text()
    required = {"ErpsyncJobDegraded", "ErpsyncUnknownMapping", "ErpsyncCaptureFailures", "ErpsyncParkedDeliveries"}
    names = set(_alert_names(RULES.read_text()))
    assert required <= names
    for name in names:
        firing = re.search(rf"alertname: {name}\n\s+exp_alerts:\n\s+- exp_labels", tests)
        assert firing, f"{name}: no test where it fires"


def test_docs_point_at_the_file_instead_of_a_copy() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert "config/prometheus/erpsync-alerts.yml" in docs
    assert "alert: ErpsyncDown" not in docs  # one copy only: the file
