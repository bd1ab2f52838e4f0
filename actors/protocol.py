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
OP_HELLO = 1          # (op, number, address, pid)          a new host process is ready
OP_SPAWN = 3          # (op, spec)                          ask: spawn an actor, reply a ref
OP_LOOKUP = 4         # (op, name)                          ask: ref or None
OP_STOPPED = 5        # (op, uid, reason, crashed, exc, address)  an actor ended (exc: what it
                      #                                     raised; address: its process's)
OP_LOG = 6            # (op, record)                        a log record from a child
OP_DEAD_LETTERS = 7   # (op, count, description)            messages that found no actor
OP_STOP_CHILDREN = 8  # (op, uid)                           ask: stop this actor's children
OP_RESTART = 9        # (op, uid, exc)                      ask: new incarnation of a held child
OP_TERMINATE = 10     # (op, uid, keep)                     ask: stop a supervised child; keep
                      #                                     its ref (a restart follows) or not
OP_WATCH = 11         # (op, watcher, target, link)         tell watcher (a ref) when target ends
OP_UNWATCH = 12       # (op, watcher, target)
OP_TREE = 13          # (op,)                               ask: the actor tree as data
OP_WAIT = 14          # (op, address, [wait info ...])      blocking waits, old enough to report
OP_UNWAIT = 15        # (op, address, [wait id ...])        reported waits that ended
OP_HUNG = 16          # (op, uid, message, address)         a handler ran past hang_timeout

# host service ops (node -> hosts)
OP_START = 20         # (op, uid, spec, alias, restart)     ask: start an actor here; alias: the
                      #                                     address it keeps across restarts;
                      #                                     restart: None or [exc]
OP_STOP = 21          # (op, uid)                           stop an actor here, after what
                      #                                     its sender sent before (tell or ask)
OP_DOWN = 22          # (op, uids, reason)                  these actors are dead
OP_EXIT = 23          # (op,)                               stop all and exit
OP_HOLD = 24          # (op, address, uids, reason)         its process died, a restart may
                      #                                     follow: hold what is sent there
OP_RESUME = 25        # (op, address)                       a new process took it: send
OP_GONE = 26          # (op, addresses)                     processes gone for good
OP_LINK_EXIT = 27     # (op, uid, reason)                   a linked actor crashed: crash too
OP_PROBE = 28         # (op, wait ids, pending)             ask: are these waits still on, and
                      #                                     these requests [uid, reply_to,
                      #                                     call_id] still unanswered?
OP_CANCEL = 29        # (op, uid, reply_to, call_id)        ask: withdraw a request from a mailbox
OP_DEADLOCK = 30      # (op, wait id, message, cycle)       fail this wait with DeadlockError
OP_QUIET = 31         # (op,)                               ask: [idle, sent, received, held]
OP_EXT = 32           # (op, name, *args)                   tell: a hook of a layer above (actors.mp)
