"""Runs TorchServe and keeps its keys from expiring: the inference and management keys are renewed
at half their lifetime, so a deployment left running never starts refusing its own clients.

    python serving/torchserve/keys.py -- torchserve --start --foreground --ts-config <file> ...

TorchServe 0.12 writes `key_file.json` (management, inference and API keys) into its working
directory; the first two expire `token_expiration_min` after they were made (its default 60) and
nothing renews them. Its token API does: `GET <management>/token?type=inference|management` with
the API key (which never expires) makes a new key, rewrites the key file and drops the old key at
once. This process starts TorchServe as its child, reads the lifetime and the management address
from the config file TorchServe is given, and renews each key when half its lifetime is left.
The project's clients read the key file again when it changes (serving/torchserve/client.py).

The umask is 077 before TorchServe starts: the key file is created readable by its owner only
(TorchServe chmods it to 0600 only after writing it). It exits with TorchServe's exit status; a
SIGTERM or SIGINT (`make stop` signals the whole process group) ends the renewals and waits for
TorchServe to stop. It imports only the standard library and runs as a script, so TorchServe and
its workers keep the environment they are given (no PYTHONPATH for the project).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

DEFAULT_LIFETIME_MIN = 60.0  # TorchServe's own default for token_expiration_min
RENEW_AT = 0.5  # renew a key when this fraction of its lifetime is left
POLL_S = 1.0  # how often the key file is looked at (a renewal is due at most this late)
FAILURE_LOG_S = 60.0  # a renewal that keeps failing is reported at most once per this interval
KINDS = ("inference", "management")


def config_value(config: Path, key: str) -> str | None:
    """The value of `key=` in a config.properties file; None when it is absent."""
    for line in config.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key and not line.lstrip().startswith("#"):
            return value.strip()
    return None


def expires_at(text: str) -> float:
    """Seconds since the epoch of a Java Instant (`2026-12-04T04:14:03.123456789Z`)."""
    # Python reads at most 6 digits of a fraction; Java may write 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


def read_keys(key_file: Path) -> dict | None:
    """The key file's JSON, or None while it is absent or half written (TorchServe rewrites it in place)."""
    try:
        keys = json.loads(key_file.read_text())
        for kind in KINDS:
            expires_at(keys[kind]["expiration time"])
        keys["API"]["key"]
        return keys
    except (OSError, ValueError, KeyError, TypeError):
        return None


def due(keys: dict, lifetime_s: float, now: float) -> list[str]:
    """The kinds of key whose time left is at most RENEW_AT of their lifetime."""
    return [kind for kind in KINDS if expires_at(keys[kind]["expiration time"]) - now <= RENEW_AT * lifetime_s]


class Keeper:
    """Renews TorchServe's keys through its token API when they are due."""

    def __init__(self, management: str, key_file: Path, lifetime_s: float):
        self.management, self.key_file, self.lifetime_s = management.rstrip("/"), key_file, lifetime_s
        self.last_failure_log = 0.0

    def renew(self, kind: str, api_key: str) -> None:
        request = Request(f"{self.management}/token?{urlencode({'type': kind})}",
                          headers={"Authorization": f"Bearer {api_key}"})
        try:
            with urlopen(request, timeout=10) as answer:
                answer.read()
        except HTTPError as error:
            raise RuntimeError(f"HTTP {error.code}: {error.read().decode(errors='replace').strip()[:200]}") from None

    def tick(self, now: float | None = None) -> list[str]:
        """Renew what is due; the kinds renewed (a failure is logged, and tried again next tick)."""
        keys = read_keys(self.key_file)
        if keys is None:  # TorchServe has not written it yet
            return []
        renewed = []
        for kind in due(keys, self.lifetime_s, time.time() if now is None else now):
            try:
                self.renew(kind, keys["API"]["key"])
            except (URLError, OSError, RuntimeError) as error:
                if time.monotonic() - self.last_failure_log >= FAILURE_LOG_S:
                    self.last_failure_log = time.monotonic()
                    print(f"keys: renewing the {kind} key failed ({error}); trying again every {POLL_S:.0f} s",
                          flush=True)
                continue
            renewed.append(kind)
            fresh = read_keys(self.key_file)
            until = fresh[kind]["expiration time"] if fresh else "?"
            print(f"keys: renewed the {kind} key (now valid until {until})", flush=True)
        return renewed


def keeper_for(command: list[str], cwd: Path) -> Keeper:
    """A Keeper for the TorchServe `command` (its --ts-config names the lifetime and the management address)."""
    config = Path(command[command.index("--ts-config") + 1])
    lifetime_min = float(config_value(config, "token_expiration_min") or DEFAULT_LIFETIME_MIN)
    management = config_value(config, "management_address") or "http://127.0.0.1:8081"
    return Keeper(management, cwd / "key_file.json", lifetime_min * 60)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv or "--ts-config" not in argv:
        sys.exit("usage: python serving/torchserve/keys.py -- torchserve --start --foreground --ts-config <file> ...")
    command = argv[argv.index("--") + 1:]
    keeper = keeper_for(command, Path.cwd())
    os.umask(0o077)
    child = subprocess.Popen(command)
    stopping = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        try:
            child.send_signal(signum)  # already sent when the whole group was signalled: harmless twice
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"keys: renewing TorchServe's keys at half their lifetime ({keeper.lifetime_s / 60:g} min)", flush=True)
    while child.poll() is None:
        if not stopping:
            keeper.tick()
        time.sleep(POLL_S)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
