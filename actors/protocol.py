"""Envelopes: the messages the runtime exchanges, as msgpack arrays.

Every envelope is a list whose first item is its kind. Top-level tuple
payloads travel as arrays with a flag (packing a tuple as an ext type costs
several times more, and nearly every message is a tuple).

    TELL   [0, uid, payload, is_tuple]
    ASK    [1, uid, payload, is_tuple, reply_to, call_id]
    CALL   [2, uid, method, args, kwargs, reply_to, call_id]
    REPLY  [3, call_id, ok, value, is_tuple]

uid 0 at any address is that process's runtime service; its payloads are
``(op, ...)`` tuples with ``op`` one of the ``OP_*`` codes below.
"""

from __future__ import annotations

TELL = 0
ASK = 1
CALL = 2
REPLY = 3

SERVICE_UID = 0

# node service ops (hosts -> node)
OP_READY = 1          # (op, uid, address, pid)            a new host's first actor started
OP_START_FAILED = 2   # (op, uid, exception)               its constructor/on_start raised
OP_SPAWN = 3          # (op, spec)                          ask: spawn an actor, reply a ref
OP_LOOKUP = 4         # (op, name)                          ask: ref or None
OP_STOPPED = 5        # (op, uid, reason, crashed)          an actor ended
OP_LOG = 6            # (op, record)                        a log record from a child
OP_DEAD_LETTERS = 7   # (op, count, description)            messages that found no actor
OP_STOP_CHILDREN = 8  # (op, uid)                           ask: stop this actor's children

# host service ops (node -> hosts)
OP_START = 20         # (op, spec)                          ask: start an actor here
OP_STOP = 21          # (op, uid)                           stop an actor here, after what
                      #                                     its sender sent before (tell or ask)
OP_DOWN = 22          # (op, address, uids, reason)         these actors are dead
OP_EXIT = 23          # (op,)                               stop all and exit
