"""The wire: msgpack codec, ZeroMQ and Pipe endpoints. Knows nothing of actors.

Layers, imports one way only: ``transport`` <- ``actors`` <- ``actors.mp``.
"""

from transport.codec import Codec, DecodeError, EncodeError, RemoteException, message

__all__ = ["Codec", "DecodeError", "EncodeError", "RemoteException", "message"]
