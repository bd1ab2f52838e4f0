"""The runtime's protocol: every envelope and every service operation as a
small named type, and the tables that turn wire arrays into them.

The wire is docs/wire-format.md: an envelope is a msgpack array whose first
item is its kind. The envelope types below keep that kind as their first
field, so a decoded array becomes its named type with one
``tuple.__new__`` and nothing is ever read from it by position::

    TELL       [0, uid, payload, is_tuple]                         Tell
    ASK        [1, uid, payload, is_tuple, reply_to, call_id]      Ask
    CALL       [2, uid, method, args, kwargs, reply_to, call_id]   Call
    REPLY      [3, call_id, ok, value, is_tuple, uid]              Answer
    RECEIPTED  [4, uid, payload, is_tuple, reply_to, call_id]      Receipted

uid 0 at any address is that process's runtime service. Its messages are
*service operations*: a Tell or an Ask whose payload is
``[code, token, *fields]`` (sent with ``is_tuple`` set). Each operation is a NamedTuple registered
under its code with :func:`op`; :func:`decode_op` turns a payload back into
it, and :func:`encode_op` makes the payload. Values that nest (an
:class:`ActorSpec` in a :class:`Spawn`) convert themselves with
``to_wire``/``from_wire``.

A decoded array of the wrong length or with an unknown kind or code raises
:class:`ProtocolError`; the loop drops it and counts it as malformed.

The protocol modules do without ``from __future__ import annotations``:
``typing.NamedTuple`` compiles every string annotation into a ``ForwardRef``,
about 140 compiles (7M instructions) at every process start.
"""

from actors.protocol.envelopes import (
    ASK,
    CALL,
    CHECKS,
    ENVELOPES,
    RECEIPTED,
    REPLY,
    REQUESTS,
    SERVICE_UID,
    TELL,
    Answer,
    Ask,
    Call,
    Envelope,
    ProtocolError,
    Receipted,
    Request,
    Tell,
    decode_envelope,
    well_formed,
)
from actors.protocol.ops import (
    OPS,
    ActorStats,
    Cancel,
    Counters,
    DeadLetters,
    Down,
    Exit,
    Ext,
    FailWait,
    Gone,
    Hello,
    Hold,
    Hung,
    IsPeer,
    LinkExit,
    Log,
    Lookup,
    PendingRequest,
    Probe,
    ProbeAnswer,
    Quiet,
    QuietReport,
    Restart,
    Resume,
    Spawn,
    Spawned,
    Start,
    Stats,
    Stop,
    StopChildren,
    Stopped,
    Terminate,
    Tree,
    Unwaits,
    Unwatch,
    WaitInfo,
    Waits,
    StopRemote,
    Watch,
    answer_to_wire,
    decode_op,
    encode_op,
    op,
)
from actors.protocol.peering import (
    NO_TOKEN,
    Meet,
    NodeDown,
    PeerDown,
    PeerLookup,
    PeerSpawn,
    PeerStop,
    PeerWatch,
)
from actors.protocol.specs import (
    ActorSpec,
    SpawnOptions,
)

__all__ = [
    "ASK",
    "ActorSpec",
    "ActorStats",
    "Answer",
    "Ask",
    "CALL",
    "CHECKS",
    "Call",
    "Cancel",
    "Counters",
    "DeadLetters",
    "Down",
    "ENVELOPES",
    "Envelope",
    "Exit",
    "Ext",
    "FailWait",
    "Gone",
    "Hello",
    "Hold",
    "Hung",
    "IsPeer",
    "LinkExit",
    "Log",
    "Lookup",
    "Meet",
    "NO_TOKEN",
    "NodeDown",
    "OPS",
    "PeerDown",
    "PeerLookup",
    "PeerSpawn",
    "PeerStop",
    "PeerWatch",
    "PendingRequest",
    "Probe",
    "ProbeAnswer",
    "ProtocolError",
    "Quiet",
    "QuietReport",
    "RECEIPTED",
    "REPLY",
    "REQUESTS",
    "Receipted",
    "Request",
    "Restart",
    "Resume",
    "SERVICE_UID",
    "Spawn",
    "SpawnOptions",
    "Spawned",
    "Start",
    "Stats",
    "StopRemote",
    "Stop",
    "StopChildren",
    "Stopped",
    "TELL",
    "Tell",
    "Terminate",
    "Tree",
    "Unwaits",
    "Unwatch",
    "WaitInfo",
    "Waits",
    "Watch",
    "answer_to_wire",
    "decode_envelope",
    "decode_op",
    "encode_op",
    "op",
    "well_formed",
]
