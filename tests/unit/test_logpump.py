"""The log pump (deploy/local/logpump.py): server.log rotated by size, nothing lost at a server's exit or stop."""
from __future__ import annotations

import sys
import time

from deploy.local import logpump, runner, servers

LIMIT = 10_000  # bytes per file in the in-process tests (the real one is logpump.MAX_BYTES)


def files(folder):
    return sorted(path.name for path in folder.glob("server.log*"))


def test_past_the_limit_the_log_rotates_to_a_bounded_number_of_files(tmp_path):
    log = logpump.RotatingLog(tmp_path / "server.log", max_bytes=LIMIT, kept=3)
    lines = [f"line {index:06d} {'x' * 80}\n".encode() for index in range(5_000)]  # ~470 KB, 47 files' worth
    for start in range(0, len(lines), 37):
        log.write(b"".join(lines[start:start + 37]))
    log.close()
    assert files(tmp_path) == ["server.log", "server.log.1", "server.log.2", "server.log.3"]
    sizes = [path.stat().st_size for path in tmp_path.glob("server.log*")]
    assert max(sizes) <= LIMIT and sum(sizes) <= 4 * LIMIT
    newest_first = [(tmp_path / name).read_bytes() for name in ("server.log", "server.log.1", "server.log.2",
                                                                  "server.log.3")]
    kept = b"".join(reversed(newest_first))
    assert kept.endswith(lines[-1]) and b"".join(lines).endswith(kept)  # whole lines, the newest ones, in order


def test_a_write_that_fails_is_counted_in_the_log_not_dropped_silently(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    log = logpump.RotatingLog(folder / "server.log", max_bytes=LIMIT)
    log.write(b"before\n")
    log.close()
    (folder / "server.log").unlink()
    folder.rmdir()  # writing now fails (as on a full disk)
    log.write(b"lost line\n")
    folder.mkdir()
    log.write(b"after\n")
    log.close()
    assert (folder / "server.log").read_text().splitlines() == ["[logpump: 10 bytes dropped: "
                                                               f"[Errno 2] No such file or directory: "
                                                               f"'{folder / 'server.log'}']", "after"]


def _server(folder, code: str) -> servers.Server:
    return servers.Server(name="fake", describe="a fake server", command=[sys.executable, "-c", code], cwd=folder,
                          marker="fake-server-marker", ready=lambda: False, prepare=lambda: None)


def test_every_line_of_a_server_that_writes_fast_and_exits_is_kept(tmp_path):
    folder = runner.run_dir("fake", tmp_path)
    lines = 50_000
    code = (f"import sys\nfor i in range({lines}): print(f'line {{i}}')\n"
            "print('a last line on stderr', file=sys.stderr)")
    started = time.monotonic()
    runner.launch(_server(folder, code), folder)
    assert runner.wait_log(folder, 30) is None, "the pump did not end at the server's exit"
    text = (folder / "server.log").read_text()
    assert text.startswith("==== ")  # the runner's line first (the command, which here spans lines)
    output = text.splitlines()[-lines - 1:]
    assert output == [f"line {index}" for index in range(lines)] + ["a last line on stderr"]
    assert time.monotonic() - started < 20


def test_a_server_that_writes_more_than_the_limit_leaves_a_bounded_log(tmp_path):
    folder = runner.run_dir("fake", tmp_path)
    # 24 MiB in 1 KiB lines, as fast as the pipe takes them
    code = "import os\nline = b'y' * 1023 + b'\\n'\nfor _ in range(24 * 1024): os.write(1, line)\nprint('done')"
    runner.launch(_server(folder, code), folder)
    assert runner.wait_log(folder, 60) is None
    sizes = {path.name: path.stat().st_size for path in folder.glob("server.log*")}
    assert sorted(sizes) == ["server.log", "server.log.1", "server.log.2", "server.log.3"]
    assert max(sizes.values()) <= logpump.MAX_BYTES + logpump.CHUNK
    assert (folder / "server.log").read_text().endswith("done\n")


def test_stop_keeps_the_lines_a_server_writes_as_it_stops(tmp_path):
    folder = runner.run_dir("fake", tmp_path)
    code = ("import signal, sys, time\n# fake-server-marker\n"
            "def bye(*_):\n    print('shutting down cleanly', flush=True)\n    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\nprint('serving', flush=True)\ntime.sleep(60)")
    recorded = runner.launch(_server(folder, code), folder)
    assert runner.read_pid(folder, "logpump.pid") is not None
    deadline = time.monotonic() + 30
    # the line itself (the runner's first line holds the command, which has the word too)
    while "serving" not in (folder / "server.log").read_text().splitlines() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.stop_one("fake", tmp_path)
    assert not runner._group_alive(recorded.pid) and runner.read_pid(folder, "logpump.pid") is None
    assert (folder / "server.log").read_text().splitlines()[-2:] == ["serving", "shutting down cleanly"]
