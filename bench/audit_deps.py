"""Audit the pinned requirements with pip-audit and print the outcome (bench, not a test: see below).

    pip install pip-audit==2.10.1   # not a project requirement
    python bench/audit_deps.py [-r requirements.txt] [--service pypi|osv]

Why not a test: from the build machine pip-audit cannot reach a vulnerability service. The PyPI JSON service
answers through the local package mirror, which knows none of the pinned packages ("Dependency not found on
PyPI and could not be audited" for every one), and OSV (api.osv.dev) does not resolve. A test would only ever
skip. Run this where the internet is reachable; exit status 0 = clean, 1 = findings, 2 = could not audit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--requirement", default=str(ROOT / "requirements.txt"))
    parser.add_argument("--service", choices=["pypi", "osv"], default="pypi")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    exe = shutil.which("pip-audit") or str(Path(sys.executable).with_name("pip-audit"))
    if not Path(exe).exists():
        print("pip-audit is not installed: pip install pip-audit==2.10.1")
        return 2
    cmd = [
        exe,
        "-r",
        args.requirement,
        "--vulnerability-service",
        args.service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"pip-audit did not finish within {args.timeout:.0f} s")
        return 2
    try:
        report = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        print("pip-audit failed:", (proc.stderr.strip().splitlines() or ["no output"])[-1])
        return 2
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    findings = [
        (d["name"], d["version"], v["id"], ",".join(v.get("fix_versions") or []) or "no fix")
        for d in audited
        for v in d.get("vulns", [])
    ]
    print(
        f"pip-audit ({args.service}) of {args.requirement}: {len(deps)} packages, {len(audited)} audited, "
        f"{len(skipped)} could not be audited, {len(findings)} finding(s)"
    )
    for name, version, vuln, fix in findings:
        print(f"  {name}=={version}: {vuln} (fixed in {fix})")
    for d in skipped[:10]:
        print(f"  not audited: {d['name']}=={d.get('version')}: {d['skip_reason']}")
    if len(skipped) > 10:
        print(f"  ... and {len(skipped) - 10} more not audited")
    if skipped:
        fallback_findings, checked = _latest_release_check(skipped)
        print(
            f"fallback: {checked} of {len(skipped)} not-audited pins are their project's latest release; the "
            f"project JSON's 'vulnerabilities' list for that release gives {len(fallback_findings)} finding(s)"
        )
        for line in fallback_findings:
            print(f"  {line}")
        findings.extend(fallback_findings)
    if findings:
        return 1
    return 2 if skipped and not audited else 0


def _latest_release_check(skipped: list[dict]) -> tuple[list[str], int]:
    """Where per-version JSON is unavailable, the project JSON (/pypi/NAME/json) still lists the vulnerabilities
    of the latest release; a pin equal to that release can be checked with it. Other pins stay unaudited."""
    import urllib.request

    findings, checked = [], 0
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    for dep in skipped:
        name, version = dep["name"], dep.get("version")
        if not version:  # pip-audit could not resolve it: use what this environment installed from the pins
            try:
                version = installed_version(name)
            except PackageNotFoundError:
                version = None
        try:
            with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=20) as response:
                data = json.load(response)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            print(f"  {name}: project JSON unavailable ({type(exc).__name__})")
            continue
        if data.get("info", {}).get("version") != version or "vulnerabilities" not in data:
            print(f"  {name}=={version}: not the latest release ({data.get('info', {}).get('version')}); not audited")
            continue
        checked += 1
        for vuln in data["vulnerabilities"] or []:
            findings.append(
                f"{name}=={version}: {vuln.get('id')} (fixed in {','.join(vuln.get('fixed_in') or []) or 'no fix'})"
            )
    return findings, checked


if __name__ == "__main__":
    raise SystemExit(main())
