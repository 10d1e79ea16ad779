"""The supply-chain gate of the test command: pip-audit over the installed virtual environment.

Fails (exit 1) on any known vulnerability not listed in scripts/pip-audit-ignore.txt. pip-audit
itself answers "No known vulnerabilities found" with exit 0 when the vulnerability service
could not be asked about a single package (a machine that reaches no advisory database): this
script counts what was really audited and says so. A run that audited nothing passes with a
warning, unless PIP_AUDIT_REQUIRED=1 (set it where the service is reachable).

Environment: PIP_AUDIT (the pip-audit to run, default .venv/bin/pip-audit), PIP_AUDIT_SERVICE
(pypi or osv, default pypi), PIP_AUDIT_REQUIRED (1: not auditing is a failure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "scripts" / "pip-audit-ignore.txt"


def ignored_ids(path: Path = IGNORE_FILE) -> dict[str, str]:
    """`ID  # why` per line; an id without its reason is refused (exceptions are documented)."""
    ids: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        vuln_id, _, why = line.partition("#")
        if not why.strip():
            raise SystemExit(f"{path.name}:{number}: {vuln_id.strip()} needs a reason after #")
        ids[vuln_id.strip()] = why.strip()
    return ids


def main() -> int:
    venv_python = ROOT / ".venv" / "bin" / "python"
    site = subprocess.run(
        [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tool = os.environ.get("PIP_AUDIT", str(ROOT / ".venv" / "bin" / "pip-audit"))
    service = os.environ.get("PIP_AUDIT_SERVICE", "pypi")
    required = os.environ.get("PIP_AUDIT_REQUIRED", "") == "1"
    ignore = ignored_ids()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        command = [tool, "--skip-editable", "--path", site, "-s", service, "-f", "json"]
        command += ["-o", str(report), "--progress-spinner", "off"]
        for vuln_id in ignore:
            command += ["--ignore-vuln", vuln_id]
        done = subprocess.run(command, capture_output=True, text=True)
        if not report.exists():
            print(done.stderr[-2000:], file=sys.stderr)
            print(f"pip-audit: could not run against {service}", file=sys.stderr)
            return 1 if required else 0
        dependencies = json.loads(report.read_text())["dependencies"]
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    audited = len(dependencies) - len(skipped)
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            print(f"pip-audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if vulnerable:
        print(
            f"pip-audit: {len(vulnerable)} vulnerable package(s); raise the minimum in "
            "pyproject.toml or, with a reason, list the id in scripts/pip-audit-ignore.txt"
        )
        return 1
    if audited == 0:
        print(
            f"pip-audit: WARNING: nothing audited ({len(skipped)} packages): the {service} "
            "vulnerability service did not answer for any of them from this machine"
        )
        return 1 if required else 0
    note = f", {len(skipped)} not audited" if skipped else ""
    print(
        f"pip-audit: {audited} packages audited against {service}, no known vulnerabilities"
        f" ({len(ignore)} documented exceptions{note})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
