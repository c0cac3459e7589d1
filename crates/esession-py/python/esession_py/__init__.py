"""XMPP Encrypted Sessions for Python: the sans-IO Rust core.

Feed received stanzas (XML strings) to ``SessionManager.handle_stanza``; send
the stanzas it returns; act on its events (plain dicts).
"""

from ._esession import (
    EsessionError,
    IncompatibleError,
    LocalError,
    PeerError,
    SessionManager,
    UsageError,
)

__all__ = [
    "SessionManager",
    "EsessionError",
    "PeerError",
    "IncompatibleError",
    "UsageError",
    "LocalError",
]
