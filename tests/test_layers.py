"""Layering: imports go one way, with no cycles; modules stay small; and
importing has no side effects (each checked in a fresh interpreter).

``transport`` <- ``actors`` (core) <- ``actors.mp``, ``actors.cli``: the
import graph is read from the source with ``ast``, so imports inside
functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

MAX_MODULE_LINES = 420   # "about 400"
MAX_CLASS_LINES = 320    # "about 300"


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter rooted at the repo; return the JSON it prints last."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def module_files(package: str) -> dict[str, pathlib.Path]:
    """Module name -> file, for the package's own modules (not subpackages)."""
    folder = ROOT / package.replace(".", "/")
    found = {}
    for path in sorted(folder.glob("*.py")):
        if path.stem == "__main__":  # python -m actors: the command, a layer above
            continue
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        found[name] = path
    return found


CORE = {**module_files("actors"), **module_files("actors.protocol"),
        **module_files("transport")}
MP = module_files("actors.mp")
CLI = module_files("actors.cli")
CLUSTER = module_files("actors.cluster")


def imports_of(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            # "from actors import protocol" imports the module actors.protocol
            # (and the package, as every submodule import does: not an edge)
            submodules = [f"{base}.{alias.name}" for alias in node.names
                          if f"{base}.{alias.name}" in known]
            targets = submodules or [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(modules: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    """Who imports whom. A package's ``__init__`` only re-exports its
    modules; a submodule that imports from the package itself (rather than
    from the module that defines a name) still counts as an edge to it."""
    known = set(modules) | set(CORE) | set(MP) | set(CLI) | set(CLUSTER)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_a_cycle():
    """The cycle check itself: a three-module ring is reported, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_reader_sees_function_level_and_type_checking_imports(tmp_path):
    """Imports inside functions, under TYPE_CHECKING and relative ones all count."""
    source = tmp_path / "mod.py"
    source.write_text(textwrap.dedent("""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from actors.node import Node
        def f():
            from actors import protocol as P
            import actors.ref
        from . import wire
    """))
    found = imports_of("actors.mod", source, set(CORE))
    assert {"actors.node", "actors.protocol", "actors.ref", "actors.wire"} <= found


def test_core_modules_import_each_other_without_cycles():
    """No two modules of actors (core) or transport import each other, even indirectly."""
    assert cycles(graph(CORE)) == []


def test_actors_mp_modules_import_each_other_without_cycles():
    """No import cycle inside actors.mp either."""
    assert cycles(graph(MP)) == []


def test_actors_cli_modules_import_each_other_without_cycles():
    """No import cycle inside actors.cli, and it uses the core only through ``actors``."""
    edges = graph(CLI)
    assert cycles(edges) == []
    for name, targets in edges.items():
        inner = {t for t in targets if t.startswith("actors.") and not t.startswith("actors.cli")}
        assert not inner, f"{name} reaches into {sorted(inner)}"


def test_actors_cluster_sits_above_the_core_alone():
    """actors.cluster: no cycle inside, nothing of actors.mp or actors.cli,
    small modules; and the core reaches it only by the one load by name in
    ActorSystem (``importlib.import_module("actors.cluster")``)."""
    edges = graph(CLUSTER)
    assert cycles(edges) == []
    for name, targets in edges.items():
        assert not {t for t in targets if t.startswith(("actors.mp", "actors.cli"))}, name
    for name, path in CLUSTER.items():
        assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES, name
    mentions = {name for name, path in CORE.items()
                if '"actors.cluster"' in path.read_text()}
    assert mentions == {"actors.system"}


def test_layers_point_one_way():
    """transport imports nothing of actors; the core imports nothing of the layers above it."""
    edges = graph(CORE)
    for name, targets in edges.items():
        if name.startswith("transport"):
            assert not {t for t in targets if t.startswith("actors")}, name
        else:
            above = {t for t in targets if t.startswith(("actors.mp", "actors.cli",
                                                         "actors.cluster"))}
            assert not above, f"{name} imports {sorted(above)}"


@pytest.mark.parametrize("name", sorted(CORE))
def test_core_modules_stay_small(name):
    """Each core module is about 400 lines at most, and each class about 300."""
    path = CORE[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{name}: {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{name}.{node.name}: {size} lines"


@pytest.mark.parametrize("name", sorted({**MP, **CLI, **CLUSTER}))
def test_layer_modules_stay_small(name):
    """Each module of actors.mp, actors.cli and actors.cluster is about 400
    lines at most too (their classes are not bounded: actors.mp's Pool is
    a whole multiprocessing.Pool)."""
    path = {**MP, **CLI, **CLUSTER}[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name}: {lines} lines"


ACTORS_MODULES = """
    import json, sys
    print(json.dumps(sorted(m for m in sys.modules if m == "actors" or m.startswith("actors."))))
"""


def test_transport_does_not_import_actors():
    """Importing transport and all its modules loads no module of the actors package."""
    loaded = run_python("import transport, transport.codec, transport.zmq, transport.pipe\n"
                        + textwrap.dedent(ACTORS_MODULES))
    assert loaded == []


def test_actors_import_is_detected():
    """The subprocess check above really sees actors modules when they are imported."""
    loaded = run_python("import actors.system\n" + textwrap.dedent(ACTORS_MODULES))
    assert "actors" in loaded and "actors.runtime" in loaded


def test_package_names_load_on_first_use():
    """``import actors`` loads no submodule; ``actors.X`` loads X's module and
    the same object as its home module's; a host process (``actors.boot``)
    loads none of the main program's side (node, system, supervision)."""
    bare = run_python("import actors\n" + textwrap.dedent(ACTORS_MODULES))
    assert bare == ["actors"]
    same = run_python("""
        import json, actors, actors.ref
        print(json.dumps([actors.ActorRef is actors.ref.ActorRef, "ActorSystem" in dir(actors)]))
    """)
    assert same == [True, True]
    host = run_python("import actors.boot\n" + textwrap.dedent(ACTORS_MODULES))
    assert "actors.host" in host
    node_side = {"actors.node", "actors.system", "actors.supervisor", "actors.deadlock",
                 "actors.launcher", "actors.starting", "actors.stopping"}
    assert not node_side & set(host), sorted(node_side & set(host))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("modules", ["actors", ", ".join(sorted(CORE))])
def test_importing_actors_has_no_side_effects(modules):
    """Importing actors starts no thread, opens no file descriptor or socket and spawns no process."""
    result = run_python(f"""
        import json, os, sys, threading

        def fds():
            return {{fd: os.readlink(f"/proc/self/fd/{{fd}}")
                    for fd in os.listdir("/proc/self/fd")
                    if os.path.exists(f"/proc/self/fd/{{fd}}")}}

        threads_before = threading.active_count()
        fds_before = len(os.listdir("/proc/self/fd"))
        fd_map_before = fds()

        import {modules}

        threads_after = threading.active_count()
        fds_after = len(os.listdir("/proc/self/fd"))
        fd_map_after = fds()
        import multiprocessing
        print(json.dumps({{
            "threads": [threads_before, threads_after],
            "thread_names": [t.name for t in threading.enumerate()],
            "fds": [fds_before, fds_after],
            "new_fds": {{k: v for k, v in fd_map_after.items() if fd_map_before.get(k) != v}},
            "children": [p.pid for p in multiprocessing.active_children()],
        }}))
    """)
    assert result["threads"] == [1, 1], result["thread_names"]
    assert result["fds"][1] == result["fds"][0], result["new_fds"]
    assert result["new_fds"] == {}
    assert result["children"] == []
