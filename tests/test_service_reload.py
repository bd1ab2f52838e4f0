"""Reloading a running service: by SIGHUP and by ``actors reload``; added,
removed, changed and unchanged children; a broken file changes nothing."""

from __future__ import annotations

import re
import signal

import pytest

from service_harness import ServiceRun, services
from test_service_run import APP

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def service(tmp_path):
    """A factory of services (APP by default), cleaned up after the test."""
    yield from services(tmp_path, APP)

# db changed (its kwargs), cache added before team, team unchanged, web
# removed, web2 added at the end
RELOADED = """\
    name = "shop"
    [system]
    spares = 0
    [logging]
    level = "INFO"
    [[child]]
    name = "db"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
    kwargs = {{greeting = "hello again"}}
    [[child]]
    name = "cache"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
    [[child]]
    name = "team"
    actor = "sample_service:Team"
    args = ["{journal}"]
    [[child]]
    name = "web2"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
"""
BROKEN = """\
    name = "shop"
    [supervisor]
    strategy = "one_for_most"
    [[child]]
    name = "db"
    actor = "sample_service:Nope"
    [[child]]
    name = "web"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
    restart = "sometimes"
"""


def children_order(run: ServiceRun) -> list[str]:
    out = run.cli("tree", "shop", "--json")
    assert out.returncode == 0, out.stderr
    import json
    return [e["name"] for e in json.loads(out.stdout)[0]["children"]]


def test_sighup_reload_adds_removes_restarts_changed_and_keeps_unchanged(service):
    """SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1; the removed
    child is stopped (on_stop ran), the changed one runs in a new process,
    the unchanged one (and its children) keep their processes, the added
    ones start; the file's order is the start order afterwards, so the
    final stop goes in reverse file order."""
    run = service().start()
    before = run.tree()
    run.write(RELOADED)
    run.signal(signal.SIGHUP)
    reloading = run.wait_message(lambda m: "RELOADING=1" in m, "RELOADING=1")
    assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.M), reloading
    run.wait_message(lambda m: "READY=1" in m, "READY=1 after the reload")
    after = run.tree()
    run.remember()
    assert sorted(after) == ["shop", "shop/cache", "shop/db", "shop/team", "shop/team/a",
                             "shop/team/b", "shop/web2"]
    for same in ("shop", "shop/team", "shop/team/a", "shop/team/b"):
        assert after[same]["pid"] == before[same]["pid"], same
    assert after["shop/db"]["pid"] != before["shop/db"]["pid"]
    assert "stop web" in run.journal() and "stop db" in run.journal()
    assert children_order(run) == ["shop/db", "shop/cache", "shop/team", "shop/web2"]
    log = run.stderr()
    assert ("service shop reloaded: added cache, web2; removed web; changed db; "
            "unchanged team") in log
    assert "db says hello again" in log

    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0
    assert run.stops() == ["stop web", "stop db",              # the reload's stops
                           "stop web2", "stop b", "stop a", "stop cache", "stop db"]


def test_reload_command_refuses_a_broken_file_and_applies_a_good_one(service):
    """``actors reload`` of a broken file exits 1 and prints every error
    (key and value), the service logs it and nothing changes (same pids);
    after the file is fixed, ``actors reload`` applies it and exits 0."""
    run = service().start()
    before = run.tree()
    run.write(BROKEN)
    out = run.cli("reload", "shop")
    assert out.returncode == 1
    assert "reload refused, nothing changed" in out.stderr
    for error in ["supervisor.strategy: must be one of one_for_one, one_for_all, "
                  "rest_for_one, got 'one_for_most'",
                  "child[1] (db).actor: module 'sample_service' has no 'Nope'",
                  "child[2] (web).restart: must be one of permanent, transient, temporary, "
                  "got 'sometimes'"]:
        assert error in out.stderr
    assert run.tree() == before
    assert "reload refused, nothing changed" in run.stderr()
    assert "child[2] (web).restart" in run.stderr()

    run.write(RELOADED)
    out = run.cli("reload", run.path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("shop: reloaded: added cache, web2; removed web; changed db; "
                                  "unchanged team")
    assert sorted(run.tree()) == ["shop", "shop/cache", "shop/db", "shop/team", "shop/team/a",
                                  "shop/team/b", "shop/web2"]
    run.remember()
    out = run.cli("reload", "shop")              # nothing changed since
    assert out.returncode == 0
    assert "added -; removed -; changed -; unchanged db, cache, team, web2" in out.stdout
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0


def test_reload_of_a_service_that_is_not_running_exits_3(service):
    """``actors reload`` (and ``tree``, ``top``) of a stopped service: 3."""
    run = service()
    for args in (["reload", "shop"], ["tree", "shop"], ["top", "shop", "--once"]):
        out = run.cli(*args)
        assert out.returncode == 3, (args, out)
        assert "service 'shop' is not running" in out.stderr
