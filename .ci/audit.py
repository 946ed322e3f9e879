"""Dependency audit for CI: pip-audit over the installed packages, honest about what it could check.

Exit 1 when a known vulnerability is found. When the vulnerability database could not
be reached for some or all packages, say so plainly with the count (pip-audit's own
"No known vulnerabilities found" would then mean "nothing was checked") and exit 0:
CI must not pretend to have audited, nor fail every build for a network it does not have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def main() -> int:
    done = subprocess.run(
        [str(BIN / "pip-audit"), "--progress-spinner", "off", "--skip-editable", "--format", "json"],
        capture_output=True, text=True, timeout=900,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"dependency audit NOT PERFORMED: pip-audit failed (exit {done.returncode}): "
              f"{done.stderr.strip().splitlines()[-1:] or ['no output']}")
        return 0
    deps = [d for d in report.get("dependencies", []) if "editable" not in d.get("skip_reason", "")]  # our own
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    if skipped:
        reasons = {d["skip_reason"].split(":")[0] for d in skipped}
        print(f"dependency audit: {len(skipped)} of {len(deps)} package(s) could NOT be audited "
              f"({'; '.join(sorted(reasons))}): the vulnerability database was not reachable from here")
    print(f"dependency audit: {len(audited)} package(s) audited, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
