"""Copy a server's output (its stdin here) into server.log, rotating by size: the log cannot fill a disk.

    some-server 2>&1 | python -m deploy.local.logpump artifacts/run/<server>/server.log

The runner (deploy/local/runner.py) starts one pump per server, its stdin the read end of a pipe
whose write end is the server's stdout and stderr. Why a process of its own: the runner returns
while the servers keep running (`make serve`), so the writer must outlive it; a child given a
plain file cannot rotate it (TorchServe's Java and TF Serving write their own way), while a pipe
works for every server the same. Standard library only, so it starts in any environment.

- **Bounded**: at MAX_BYTES the file is renamed server.log.1 (.1 -> .2 ... up to KEPT old files,
  the oldest dropped) and a new server.log begins, at a line end where the chunk has one. At most
  (KEPT + 1) x (MAX_BYTES + one chunk) on disk per server.
- **Nothing lost at exit**: the pump reads until end of file, which comes only when every
  process holding the write end (the server and its children) has exited, and writes each chunk
  as it comes (no buffer of its own). It has a session of its own, so the SIGTERM that stops the
  server's group never reaches it; `stop` waits for it to drain, and sends it SIGTERM (write what
  the pipe holds now, then exit) only when a process that left the group still holds the pipe.
- **Never blocks the server for long**: writing a local file is faster than a server logs; the
  pipe's buffer (enlarged to PIPE_BYTES where the kernel allows) absorbs bursts. A write that
  fails (disk full) drops that chunk, and a line "[logpump: N bytes dropped: why]" is written as
  soon as writing works again: never dropped silently, and the server is never held up by it.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024  # one log file; the one place this size is set
KEPT = 3  # old files kept beside server.log: server.log.1 (newest) .. server.log.3
CHUNK = 64 * 1024  # bytes read from the pipe at a time
PIPE_BYTES = 1024 * 1024  # the pipe's buffer, where /proc/sys/fs/pipe-max-size allows


class RotatingLog:
    """Bytes appended to `path`, renamed to path.1 .. path.<kept> past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, kept: int = KEPT):
        self.path, self.max_bytes, self.kept = Path(path), max_bytes, kept
        self.dropped, self.why = 0, ""
        self.file = None
        self.size = 0

    def write(self, data: bytes) -> None:
        """Write `data`, rotating first when it would pass the limit (at its last line end, if it has one)."""
        try:
            self._note_drops()
            if self.size + len(data) > self.max_bytes and self.size > 0:
                cut = data.rfind(b"\n", 0, max(self.max_bytes - self.size, 0)) + 1
                if cut:  # the lines that still fit end this file
                    self._append(data[:cut])
                    data = data[cut:]
                self.rotate()
            self._append(data)
        except OSError as error:  # disk full, folder removed: count it, keep reading
            self.dropped += len(data)
            self.why = str(error)
            self.close()

    def _append(self, data: bytes) -> None:
        if self.file is None:
            self.file = open(self.path, "ab", buffering=0)
            self.size = self.file.seek(0, os.SEEK_END)
        if data:
            self.file.write(data)
            self.size += len(data)

    def _note_drops(self) -> None:
        if self.dropped:
            note = f"[logpump: {self.dropped} bytes dropped: {self.why}]\n".encode()
            self._append(note)
            self.dropped = 0

    def rotate(self) -> None:
        self.close()
        for index in range(self.kept - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        try:
            if self.kept:
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            else:
                self.path.unlink()
        except FileNotFoundError:  # removed meanwhile: nothing to keep
            pass
        self.size = 0

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


def enlarge_pipe(fd: int, size: int = PIPE_BYTES) -> None:
    """A bigger buffer for pipe `fd`, best effort (the kernel's default is 64 KiB)."""
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except OSError:
        pass


class Stopped(Exception):
    """SIGTERM or SIGINT: write what the pipe holds now, then exit."""


def stopped(signum, frame):
    raise Stopped


def pump(source: int, log: RotatingLog) -> None:
    """Copy `source` (a file descriptor) into `log` until end of file, or until Stopped and the pipe is empty."""
    try:
        while data := os.read(source, CHUNK):
            log.write(data)
    except Stopped:
        os.set_blocking(source, False)
        try:
            while data := os.read(source, CHUNK):
                log.write(data)
        except BlockingIOError:
            pass
    if log.dropped:  # one last try to say what was lost
        time.sleep(0.1)
        log.write(b"")
    log.close()


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m deploy.local.logpump <log file>   (the output to keep on stdin)")
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stopped)
    enlarge_pipe(0)
    pump(0, RotatingLog(Path(argv[0])))


if __name__ == "__main__":
    main()
