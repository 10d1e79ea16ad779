"""scripts/audit_deps.py: the test command's pip-audit gate fails on a known vulnerability and
does not mistake "nothing could be audited" for "nothing vulnerable"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_gate(tmp_path: Path, dependencies: list[dict[str, object]], **env: str) -> str:
    """The gate with a stand-in pip-audit that writes `dependencies` as its JSON report."""
    fake = tmp_path / "pip-audit"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "args = sys.argv\n"
        "out = args[args.index('-o') + 1]\n"
        f"json.dump({{'dependencies': {json.dumps(dependencies)}, 'fixes': []}}, open(out, 'w'))\n"
    )
    fake.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_deps.py")],
        env={**os.environ, "PIP_AUDIT": str(fake), **env},
        capture_output=True,
        text=True,
    )
    return f"{done.returncode} {done.stdout}{done.stderr}"


def test_a_known_vulnerability_fails_the_test_command(tmp_path: Path) -> None:
    vuln = {"id": "GHSA-xxxx", "fix_versions": ["12.2.0"], "aliases": [], "description": ""}
    outcome = run_gate(
        tmp_path,
        [
            {"name": "pillow", "version": "11.0.0", "vulns": [vuln]},
            {"name": "pyjwt", "version": "2.15.1", "vulns": []},
        ],
    )
    assert outcome.startswith("1 ")
    assert "pillow 11.0.0: GHSA-xxxx (fixed in 12.2.0)" in outcome


def test_clean_packages_pass_and_say_how_many_were_audited(tmp_path: Path) -> None:
    outcome = run_gate(tmp_path, [{"name": "pyjwt", "version": "2.15.1", "vulns": []}])
    assert outcome.startswith("0 ")
    assert "1 packages audited against pypi, no known vulnerabilities" in outcome


@pytest.mark.parametrize(("required", "status"), [("", "0"), ("1", "1")])
def test_nothing_audited_is_said_and_fails_where_required(
    tmp_path: Path, required: str, status: str
) -> None:
    skipped = {"name": "pyjwt", "version": "2.15.1", "skip_reason": "Dependency not found"}
    outcome = run_gate(tmp_path, [skipped], PIP_AUDIT_REQUIRED=required)
    assert outcome.startswith(f"{status} ")
    assert "WARNING: nothing audited (1 packages)" in outcome
