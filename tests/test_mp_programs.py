"""Ordinary multiprocessing programs, written as books and tutorials write
them (tests/mp_programs/), run unchanged under the standard library (spawn)
and under actors.mp: their outputs must be the same.

"Unchanged" means the one migration step docs/mp.md gives: the import.
:func:`to_actors` rewrites ``import multiprocessing`` (and ``from
multiprocessing... import``) to ``actors.mp``, and ``ProcessPoolExecutor``
to ``actors.mp.Executor``; nothing else in the program changes. The
standard library runs under spawn (a ``sitecustomize`` sets the start
method, as the program would on macOS or Windows), since that is what
actors.mp does. A program whose lines come in any order says so with a
``# output: unordered`` line; its lines are compared sorted. Only stdout is
compared (stderr carries tracebacks whose pids and paths differ), and each
run must end with the same exit code.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import psutil
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "mp_programs"
NAMES = sorted(p.stem for p in PROGRAMS.glob("*.py"))
TIMEOUT = 90.0

# Programs run with `python -c`: no script for a spawned child to re-import,
# so the standard library allows them without a __main__ guard.
INLINE = {
    "inline_pool": (
        "import multiprocessing\n"
        "with multiprocessing.Pool(2) as pool:\n"
        "    print(pool.map(abs, [-1, -2, 3]))\n"
        "    print(pool.apply(divmod, (17, 5)))\n"),
    "inline_process_queue": (
        "import multiprocessing\n"
        "q = multiprocessing.Queue()\n"
        "p = multiprocessing.Process(target=q.put, args=('from a child',))\n"
        "p.start()\n"
        "print(q.get(timeout=30))\n"
        "p.join()\n"
        "print(p.name, p.exitcode)\n"),
}

SPAWN_SITE = "import multiprocessing\nmultiprocessing.set_start_method('spawn', force=True)\n"


def to_actors(source: str) -> str:
    """The program with actors.mp in place of multiprocessing."""
    out = []
    for line in source.splitlines():
        indent = line[:len(line) - len(line.lstrip())]
        stripped = line.strip()
        if stripped == "import multiprocessing":
            line = indent + "import actors.mp as multiprocessing"
        elif m := re.fullmatch(r"import multiprocessing as (\w+)", stripped):
            line = f"{indent}import actors.mp as {m[1]}"
        elif m := re.fullmatch(r"from multiprocessing(\.\w+)? import (.+)", stripped):
            line = f"{indent}from actors.mp{m[1] or ''} import {m[2]}"
        elif m := re.fullmatch(r"from concurrent\.futures import (.+)", stripped):
            names = [n.strip() for n in m[1].split(",")]
            rest = [n for n in names if n != "ProcessPoolExecutor"]
            lines = [f"{indent}from concurrent.futures import {', '.join(rest)}"] if rest else []
            if "ProcessPoolExecutor" in names:
                lines.append(f"{indent}from actors.mp import Executor as ProcessPoolExecutor")
            line = "\n".join(lines)
        elif stripped == "import concurrent.futures":
            line = f"{indent}import concurrent.futures\n{indent}import actors.mp"
        line = line.replace("concurrent.futures.ProcessPoolExecutor", "actors.mp.Executor")
        out.append(line)
    return "\n".join(out) + "\n"


def run(args: list[str], cwd: pathlib.Path, pythonpath: list[str]) -> tuple[int, str, str]:
    """Run a program to its end (its process tree is killed if it overruns)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        tree = psutil.Process(proc.pid).children(recursive=True)
        for p in [psutil.Process(proc.pid), *tree]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        out, err = proc.communicate()
        pytest.fail(f"{args} did not end within {TIMEOUT} s:\n{out}\n{err}")
    return proc.returncode, out, err


def both(tmp_path: pathlib.Path, name: str, source: str, inline: bool) -> dict[str, tuple]:
    """Exit code and stdout of the program under each implementation."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SPAWN_SITE)
    results = {}
    for flavor, text, path in (("stdlib", source, [str(site)]),
                               ("actors", to_actors(source), [str(ROOT)])):
        work = tmp_path / flavor
        work.mkdir()
        if inline:
            args = ["-c", text]
        else:
            (work / f"{name}.py").write_text(text)
            args = [f"{name}.py"]
        code, out, err = run(args, work, path)
        if "# output: unordered" in source:
            out = "\n".join(sorted(out.splitlines()))
        results[flavor] = (code, out, err)
    return results


def check(results: dict[str, tuple]) -> None:
    (code_s, out_s, err_s), (code_a, out_a, err_a) = results["stdlib"], results["actors"]
    assert out_s.strip(), f"the standard library's run printed nothing:\n{err_s}"
    assert (code_a, out_a) == (code_s, out_s), f"actors.mp's stderr:\n{err_a}"


def test_the_rewrite_touches_only_imports():
    source = ("import multiprocessing\nimport multiprocessing as mp\n"
              "from multiprocessing import Pool, Queue\nfrom multiprocessing.managers import X\n"
              "from concurrent.futures import ProcessPoolExecutor, as_completed\n"
              "import concurrent.futures\nx = concurrent.futures.ProcessPoolExecutor()\n"
              "print('multiprocessing')\n")
    assert to_actors(source) == (
        "import actors.mp as multiprocessing\nimport actors.mp as mp\n"
        "from actors.mp import Pool, Queue\nfrom actors.mp.managers import X\n"
        "from concurrent.futures import as_completed\n"
        "from actors.mp import Executor as ProcessPoolExecutor\n"
        "import concurrent.futures\nimport actors.mp\nx = actors.mp.Executor()\n"
        "print('multiprocessing')\n")


@pytest.mark.timeout(2 * TIMEOUT + 30)
@pytest.mark.parametrize("name", NAMES)
def test_program_runs_the_same(tmp_path, name):
    check(both(tmp_path, name, (PROGRAMS / f"{name}.py").read_text(), inline=False))


@pytest.mark.timeout(2 * TIMEOUT + 30)
@pytest.mark.parametrize("name", sorted(INLINE))
def test_inline_program_runs_the_same(tmp_path, name):
    check(both(tmp_path, name, INLINE[name], inline=True))
