"""Free ports on this machine: for servers, training workers and benchmarks started side by side.

    from core.ports import free_ports
    grpc_port, rest_port = free_ports(2)          # on 127.0.0.1 (the spec's serving host)
"""
from __future__ import annotations

import socket

from core.spec import SERVING_HOST


def free_ports(count: int, host: str = SERVING_HOST) -> list[int]:
    """Ports the OS has just handed out (held together so they are distinct), then released."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def listening(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether anything accepts a TCP connection at host:port now (a refused or timed-out connect: no)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
