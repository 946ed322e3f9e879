"""Free loopback ports for servers the tests and the benchmarks start a moment later (Temporal
dev servers, `up`, `web`, SMTP sinks). Project-free, so that acceptance tests can use it.

A port that ``bind(("127.0.0.1", 0))`` hands out lies in the kernel's ephemeral range, where
any process's next outgoing connection, or the Temporal dev server's own internal services,
can take it before the server it was chosen for binds it. Ports are therefore chosen below
that range, at random so that parallel processes rarely pick the same one, and checked free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 20000
_given: set[int] = set()  # never hand out the same port twice in one process


def ephemeral_start(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """Where the kernel's ephemeral range starts (32768 where it cannot be read)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    top = ephemeral_start()
    if top - _LOWEST >= 1000:
        for _ in range(200):
            port = random.randrange(_LOWEST, top)
            if port not in _given and is_free(port, host):
                _given.add(port)
                return port
    with socket.socket() as s:  # no room below the ephemeral range: the kernel's choice
        s.bind((host, 0))
        return s.getsockname()[1]
