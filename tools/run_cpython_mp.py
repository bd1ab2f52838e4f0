"""Run CPython 3.11's multiprocessing tests against actors.mp and count.

    python -m tools.run_cpython_mp                 # against actors.mp
    python -m tools.run_cpython_mp --stdlib        # the same selection, standard library
    python -m tools.run_cpython_mp --json out.json -k Barrier --timeout 30

The selection is every ``WithProcesses*`` and ``WithManager*`` test of
``Lib/test/_test_multiprocessing.py`` (218 tests in 3.11.7), as
``tools/cpython_mp_suite.py`` installs them; each runs under pytest with a
per-test timeout. Prints the counts and one line per test that did not
pass (its outcome and the first line of its error); ``--json`` writes
every outcome.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUITE = ROOT / "tools" / "cpython_mp_suite.py"


def run(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    """Outcome per test id: (passed|failed|error|skipped, first line of why)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["CPYTHON_MP_TARGET"] = "stdlib" if args.stdlib else "actors"
    with tempfile.TemporaryDirectory() as tmp:
        xml = pathlib.Path(tmp) / "results.xml"
        cmd = [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:warnings",
               "-p", "no:cacheprovider", "-q", f"--timeout={args.timeout}",
               "-o", f"faulthandler_timeout={args.timeout + 30}",
               f"--junitxml={xml}", "-o", "junit_family=xunit2"]
        if args.k:
            cmd += ["-k", args.k]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=False)
        if args.verbose:
            print(proc.stdout)
        if not xml.exists():
            print(proc.stdout[-5000:])
            raise SystemExit("pytest wrote no results")
        outcomes = {}
        for case in ET.parse(xml).getroot().iter("testcase"):
            test_id = f"{case.get('classname', '').rpartition('.')[2]}.{case.get('name')}"
            outcome, why = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = {"failure": "failed"}.get(child.tag, child.tag)
                    why = (child.get("message") or child.text or "").strip().splitlines()
                    why = why[0][:200] if why else ""
                    break
            outcomes[test_id] = (outcome, why)
        return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run_cpython_mp",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stdlib", action="store_true",
                        help="run the selection against the standard library instead")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per test (30)")
    parser.add_argument("-k", help="pytest -k expression: a part of the selection")
    parser.add_argument("--json", help="write every outcome here")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = parser.parse_args(argv)
    outcomes = run(args)
    counts = collections.Counter(outcome for outcome, _ in outcomes.values())
    for test_id, (outcome, why) in sorted(outcomes.items()):
        if outcome != "passed":
            print(f"{outcome:7} {test_id}: {why}")
    target = "multiprocessing (stdlib)" if args.stdlib else "actors.mp"
    print(f"\n{target}: {counts['passed']} passed of {len(outcomes)} "
          f"({counts['failed']} failed, {counts['error']} errors, {counts['skipped']} skipped)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"target": target, "counts": dict(counts),
                       "outcomes": {k: list(v) for k, v in sorted(outcomes.items())}}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
