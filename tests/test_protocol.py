"""The typed protocol: wire layouts stay as documented, every service
operation survives the codec, and malformed arrays are refused by name."""

from __future__ import annotations

import pytest

from actors import protocol as P
from actors.protocol import ops
from actors.wire import RuntimeCodec

codec = RuntimeCodec(lambda *fields: fields, allow_pickle=False)
TOKEN = b"0123456789abcdef"


def through_the_wire(value):
    return codec.decode(codec.encode(value))


SPEC = P.ActorSpec("pkg.mod:Cls", [1, "a"], {"k": 2}, "name", 7, None,
                   P.SpawnOptions(supervised=True, restart="transient", shutdown=0.0))
INFO = P.WaitInfo(3, "thread:9", None, 12.5, "ask", "('get',)", 4, "ipc:///x", 11, "ipc:///y", "T")

EXAMPLES = [
    P.Hello(1, "ipc:///a", 42), P.Spawn(SPEC), P.Lookup("n"),
    P.Stopped(5, "crashed: x", True, ValueError("v"), "ipc:///a"),
    P.Log({"msg": "m", "levelno": 20}), P.DeadLetters(3, "h1"), P.StopChildren(5),
    P.Restart(5, None), P.Terminate(5, True), P.Watch(None, None, False), P.Unwatch(1, 2),
    P.Tree(), P.Waits("ipc:///a", [INFO]), P.Unwaits("ipc:///a", [1, 2]),
    P.Hung(5, "hung", "ipc:///a"), P.IsPeer("tcp://127.0.0.1:5"), P.Start(5, SPEC, "ipc:///s5", True, None), P.Stop(5),
    P.Down([5, 6], "stopped"), P.Exit(), P.Hold("ipc:///s5", [5], "gone"),
    P.Resume("ipc:///s5"), P.Gone(["ipc:///a"]), P.LinkExit(5, "linked"),
    P.Probe([1], [P.PendingRequest(5, "ipc:///a", 9), P.PendingRequest(6, None, None)]),
    P.Cancel(5, "ipc:///a", 9), P.FailWait(3, "deadlock", ["a", "b"]), P.Quiet(),
    P.Ext("mp.recall", [7, None]), P.Stats(), P.Counters(),
    P.Meet("a", "a.12ab", "tcp://127.0.0.1:7000", "tcp://127.0.0.1:7001"), P.PeerLookup("n"), P.PeerWatch(None, None),
    P.PeerDown([5], "stopped"),
    P.NodeDown("a.12ab", "lost"),
    P.PeerSpawn(SPEC, None), P.PeerStop(5), P.StopRemote(None),
]


def test_peer_operations_need_no_token_and_others_do():
    """Operations between nodes carry no token (a node's token stays in its
    processes); every other operation without the token is refused."""
    assert P.decode_op([P.PeerLookup.code, P.NO_TOKEN, "n"], TOKEN) == P.PeerLookup("n")
    with pytest.raises(P.ProtocolError, match="token"):
        P.decode_op([P.NodeDown.code, P.NO_TOKEN, "a", "b"], TOKEN)
    with pytest.raises(P.ProtocolError, match="token"):
        P.decode_op([P.Lookup.code, P.NO_TOKEN, "n"], TOKEN)


def test_every_operation_has_an_example():
    """The examples below cover every registered service operation."""
    assert {type(op) for op in EXAMPLES} == set(P.OPS.values())


@pytest.mark.parametrize("operation", EXAMPLES, ids=lambda op: type(op).__name__)
def test_operations_survive_the_wire(operation):
    """Each operation, encoded as its payload and sent through the codec, decodes to an equal value of its own type."""
    back = P.decode_op(through_the_wire(P.encode_op(operation, TOKEN)), TOKEN)
    assert type(back) is type(operation)
    if isinstance(operation, P.Stopped):  # exceptions compare by identity
        assert back._replace(exc=None) == operation._replace(exc=None)
        assert type(back.exc) is ValueError and back.exc.args == ("v",)
    else:
        assert back == operation


def test_payload_starts_with_the_operation_code_and_the_token():
    """A payload is [code, token, *fields]; codes are the documented integers."""
    assert P.encode_op(P.Lookup("n"), TOKEN) == [4, TOKEN, "n"]
    assert P.encode_op(P.Stop(5), TOKEN) == [21, TOKEN, 5]
    assert P.Spawn.code == 3 and P.Start.code == 20 and P.Ext.code == 32


def test_envelope_layouts_are_the_documented_arrays():
    """The wire layout of docs/wire-format.md is unchanged."""
    assert P.Tell.wire(5, ("add", 1)) == [0, 5, ["add", 1], True]
    assert P.Tell.wire(5, "get") == [0, 5, "get", False]
    assert P.Ask.wire(5, ("add", 1), "ipc:///r", 9) == [1, 5, ["add", 1], True, "ipc:///r", 9]
    assert P.Call.wire(5, "add", (1,), {"k": 2}, "ipc:///r", 9) == \
        [2, 5, "add", [1], {"k": 2}, "ipc:///r", 9]
    assert P.Answer.wire(9, 5, True, (1, 2)) == [3, 9, True, [1, 2], True, 5]
    assert SPEC.to_wire() == ["pkg.mod:Cls", [1, "a"], {"k": 2}, "name", 7, None,
                              {"supervised": True, "restart": "transient", "shutdown": 0.0}]


def test_decoded_envelopes_are_named_types():
    """A decoded array becomes its envelope type, read by field name."""
    tell = P.decode_envelope(through_the_wire(P.Tell.wire(5, ("add", 1))))
    assert type(tell) is P.Tell and tell.uid == 5 and tell.message == ("add", 1)
    ask = P.decode_envelope(through_the_wire(P.Ask.wire(5, "get", "ipc:///r", 9)))
    assert type(ask) is P.Ask and (ask.reply_to, ask.call_id, ask.message) == ("ipc:///r", 9, "get")
    answer = P.decode_envelope(through_the_wire(P.Answer.wire(9, 5, True, (1, 2))))
    assert type(answer) is P.Answer and answer.result == (1, 2) and answer.uid == 5


@pytest.mark.parametrize("raw", [
    [0, 5, "x"], [1, 5, "x", False, "ipc:///r"], [3, 9, True, 1, False, 5, "extra"],
    [9, 1, 2], [], "text", 17, None, (0, 5, "x", False),
    [0, 5, "not an array", True], [0, "5", "x", False], [0, 5, "x", 1],
    [1, 5, "x", False, 7, 9], [1, 5, "x", False, "ipc:///r", "9"],
    [2, 5, 7, [], {}, "ipc:///r", 9], [2, 5, "m", "args", {}, "ipc:///r", 9],
    [2, 5, "m", [], [], "ipc:///r", 9], [3, 9, True, "x", True, 5], [3, 9, 1, 2, False, 5],
    [3, 9, True, 2, False, "5"],
], ids=repr)
def test_malformed_envelopes_are_refused(raw):
    """Wrong length, unknown kind or not an array: ProtocolError."""
    with pytest.raises(P.ProtocolError):
        P.decode_envelope(raw)


@pytest.mark.parametrize("payload", [
    [999, TOKEN], [], None, "x", [P.Stop.code, TOKEN], [P.Stop.code, TOKEN, 1, 2],
    [P.Spawn.code, TOKEN, [1, 2]],
    [P.Spawn.code, TOKEN, ["a:B", [], {}, None, None, None, {"no_such_option": 1}]],
    [P.Ext.code, TOKEN], [P.Ext.code, TOKEN, 5],
], ids=repr)
def test_malformed_operations_are_refused(payload):
    """Unknown codes, wrong arity and bad nested specs: ProtocolError."""
    with pytest.raises(P.ProtocolError):
        P.decode_op(payload, TOKEN)


@pytest.mark.parametrize("payload", [
    [P.Exit.code], [P.Exit.code, b"wrong token 1234"], [P.Exit.code, "0123456789abcdef"],
    [P.Stop.code, None, 5],
], ids=repr)
def test_operations_without_the_nodes_token_are_refused(payload):
    """A service operation from outside the node (no token, or another) is refused."""
    with pytest.raises(P.ProtocolError):
        P.decode_op(payload, TOKEN)


def test_codes_are_unique():
    """Registering a second operation under a taken code fails at once."""
    with pytest.raises(ValueError, match="taken"):
        ops.op(P.Stop.code)(type("Clash", (), {}))
