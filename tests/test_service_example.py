"""examples/service runs as its docs say: checked, started, looked at,
orders packed, stopped in order."""

from __future__ import annotations

import configparser
import os

import pytest

from conftest import wait_for, wait_gone
from service_harness import ROOT, ServiceRun

pytestmark = pytest.mark.timeout(90)

EXAMPLE = os.path.join(ROOT, "examples", "service")


@pytest.fixture
def example(tmp_path):
    run = ServiceRun(str(tmp_path), None, path=os.path.join(EXAMPLE, "app.toml"))
    yield run
    run.cleanup()


def test_example_service_runs_and_stops(example):
    """``actors check`` accepts app.toml; ``actors run`` starts the tree
    (a sub-supervisor with two packers), orders get packed by both packers,
    and ``actors stop`` stops it in order (the stock's on_stop logs what is
    left) with exit status 0."""
    run = example
    check = run.cli("check", run.path)
    assert check.returncode == 0, check.stderr
    assert "3 children (stock, packers, orders)" in check.stdout
    run.start()
    tree = run.tree()
    assert sorted(tree) == ["shop", "shop/orders", "shop/packers", "shop/packers/p1",
                            "shop/packers/p2", "shop/stock"]
    assert tree["shop/packers"]["supervisor"] and tree["shop/packers"]["class"] == \
        "shop.Packers"
    wait_for(lambda: "p1" in run.stderr() and "order 2: packed one" in run.stderr(),
             20, "two orders packed")
    log = run.stderr()
    assert f"INFO shop/packers/p1[{tree['shop/packers/p1']['pid']}] shop: order 1: " \
           "packed one pears" in log
    assert f"shop/packers/p2[{tree['shop/packers/p2']['pid']}] shop: order 2: packed one " \
           "apples" in log
    stop = run.cli("stop", "shop")
    assert stop.returncode == 0, stop.stderr
    assert run.proc.poll() == 0
    log = run.stderr()
    assert "shop: stock closed: {'apples': " in log
    assert wait_gone(sorted(run.known_pids), 10) == []


def test_example_unit_file_is_a_notify_service():
    """The unit file shipped with the example has what the docs promise."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(os.path.join(EXAMPLE, "shop.service"))
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["KillMode"] == "mixed"
    assert service["Restart"] == "on-failure"
    assert service["WatchdogSec"] == "30"
    assert service["ExecStart"].endswith("actors run /opt/shop/app.toml")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_deployment_doc_shows_the_example_files_as_they_are():
    """docs/deployment.md quotes app.toml and the unit file of the example:
    the quotes are the files."""
    with open(os.path.join(ROOT, "docs", "deployment.md")) as f:
        doc = f.read()
    blocks = {lang: [] for lang in ("toml", "ini")}
    for lang in blocks:
        parts = doc.split(f"```{lang}\n")[1:]
        blocks[lang] = [part.split("```", 1)[0] for part in parts]
    for name, lang in (("app.toml", "toml"), ("shop.service", "ini")):
        with open(os.path.join(EXAMPLE, name)) as f:
            text = f.read()
        body = text.split("\n", 2)[2] if name == "app.toml" else text  # past its 2-line header
        assert body in blocks[lang], name
