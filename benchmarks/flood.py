"""Half-sent connections: what a server does with more connections than it has open files for.

    python -m benchmarks flood --port 8501 --kind rest --connections 20000 --processes 2
    python -m benchmarks flood --port 8500 --kind grpc --connections 300 --seconds 15

Opens N connections to host:port, each sending part of a request and then nothing (`rest`: a
POST's request line and a header, never the blank line that ends the headers; `grpc`: half of the
HTTP/2 connection preface), spread over P processes (one process holds at most its open-file
limit; the machine's is 20,000, soft and hard, so 20,000 need two), watches them `--seconds` once
all are open (opening thousands takes seconds of its own when the server's accept queue is full:
`opening_s`), and counts what the server did with them: closed (and after how long, from the
connection's opening), answered first (a 503 refusal), or still open at the end; and how many
could not connect. Every
socket is closed at the end. Loopback and the given port only. Normal clients calling meanwhile
are the caller's part (tests/integration/test_floods.py). Writes <artifacts>/bench/flood.json
(benchmarks/results.py) unless --worker (one process's share, its counts as a JSON line on stdout).
`drop_half_bodies` is the other half-sent kind: clients that send half a body and go away at once
(tests/integration/test_log_bounds.py counts what they cost a server's log).
"""
from __future__ import annotations

import argparse
import json
import selectors
import socket
import subprocess
import sys
import time

from benchmarks import tools
from core import connections

PARTIAL = {
    "rest": b"POST /v1/models/x:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
    "grpc": b"PRI * HTTP/2.0\r\n",  # half of the 24-byte preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
}
CONNECT_TIMEOUT_S = 3.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def hold(host: str, port: int, count: int, kind: str, seconds: float, progress=None) -> dict:
    """One process's share: open `count` half-sent connections, watch them `seconds` more, close them; the counts."""
    _, limit, _ = connections.raise_open_files(count + 64)
    count = min(count, limit - 64)  # the rest of this process's files: Python itself, the selector
    selector = selectors.DefaultSelector()
    opened_at, closed_after, answered, failed = {}, [], 0, 0
    start = time.monotonic()
    try:
        for index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(CONNECT_TIMEOUT_S)
            try:
                sock.connect((host, port))
                sock.sendall(PARTIAL[kind])
            except OSError:
                failed += 1
                sock.close()
                continue
            sock.setblocking(False)
            opened_at[sock] = time.monotonic()
            selector.register(sock, selectors.EVENT_READ)
            if progress and (index + 1) % 1000 == 0:
                progress(f"flood: {index + 1:,} of {count:,} connections opened")
        opening_s = time.monotonic() - start
        watch_until = time.monotonic() + seconds
        while opened_at and time.monotonic() < watch_until:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except OSError:  # reset: closed by the server
                    data = b""
                if data.startswith(b"HTTP/1.1 503"):
                    answered += 1
                if not data or data.startswith(b"HTTP/"):  # closed, or refused (closed right after)
                    closed_after.append(time.monotonic() - opened_at.pop(sock))
                    selector.unregister(sock)
                    sock.close()
    finally:
        for sock in list(opened_at):
            selector.unregister(sock)
            sock.close()
        selector.close()
    closed_after.sort()
    return {"connections": len(closed_after) + len(opened_at), "could_not_connect": failed,
            "closed_by_server": len(closed_after), "refused_with_503": answered, "still_open": len(opened_at),
            "closed_within_s": round(closed_after[-1], 2) if closed_after else None, "opening_s": round(opening_s, 2)}


def drop_half_bodies(host: str, port: int, path: str, count: int, length: int = 2048) -> int:
    """`count` clients that each send a POST's whole headers and half of its `length`-byte body to `path`,
    then close: clients that went away mid-request (what each costs the server's log). How many connected."""
    if host not in LOOPBACK:
        raise ValueError(f"flood: loopback only, not {host}")
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {length}\r\n\r\n").encode() + b" " * (length // 2)
    sent = 0
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as sock:
                sock.sendall(request)
                time.sleep(0.002)  # the server reads the headers and starts on the body before the close
            sent += 1
        except OSError:
            continue
    return sent


def flood(host: str, port: int, count: int, kind: str, seconds: float, processes: int = 1, progress=print) -> dict:
    """`count` half-sent connections over `processes` worker processes (python -m benchmarks flood --worker)."""
    if host not in LOOPBACK:
        raise ValueError(f"flood: loopback only, not {host}")
    share = -(-count // processes)
    workers = [subprocess.Popen([*tools.argv("flood"), "--worker", "--host", host,
                                 "--port", str(port), "--kind", kind, "--connections", str(share),
                                 "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
               for _ in range(processes)]
    progress(f"flood: {count:,} half-sent {kind} connections to {host}:{port} from {processes} processes, "
             f"held {seconds:g} s")
    parts = []
    for worker in workers:
        out, _ = worker.communicate(timeout=seconds + 600)
        parts.append(json.loads(out.strip().splitlines()[-1]))
    total = {key: sum(part[key] for part in parts) for key in parts[0] if key not in ("closed_within_s", "opening_s")}
    within = [part["closed_within_s"] for part in parts if part["closed_within_s"] is not None]
    total["closed_within_s"] = max(within) if within else None
    total["opening_s"] = max(part["opening_s"] for part in parts)
    return {"host": host, "port": port, "kind": kind, "requested": count, "processes": processes,
            "seconds": seconds, **total}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=sorted(PARTIAL), default="rest", help="what each connection half-sends")
    parser.add_argument("--connections", type=int, default=1000, help="half-sent connections in all (default: 1000)")
    parser.add_argument("--processes", type=int, default=1,
                        help="processes holding them, each within its own open-file limit (default: 1)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="how long they are watched once all are open (default: 20)")
    parser.add_argument("--worker", action="store_true", help="one process's share: counts as a JSON line on stdout")
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        parser.error(f"--host must be a loopback address, not {args.host}")
    if args.worker:
        counts = hold(args.host, args.port, args.connections, args.kind, args.seconds,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
        print(json.dumps(counts), flush=True)
        return counts
    from benchmarks import machine, results
    from core import paths

    report = flood(args.host, args.port, args.connections, args.kind, args.seconds, args.processes)
    report |= {"command": results.command(__name__, argv), "machine": machine.describe()}
    print(json.dumps(report, indent=2))
    print(f"wrote {results.write(report, paths.artifacts_dir(), 'flood')}")
    return report
