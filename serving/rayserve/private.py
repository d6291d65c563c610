"""What keeps the local Ray cluster (serving/rayserve/cluster.py) to its own user: its folders and its token.

    private.folder(path)            # created (or taken over) as 0700, ours, not a link
    path = private.new_token(run)   # <run>/auth_token, a fresh 256-bit token, 0600 from its creation
    os.environ.update(private.token_environment(path))

Ray 2.60 turns token authentication on for a cluster `ray.init` starts, but with its user-wide default token
(~/.ray/auth_token, written with the umask: 0644) and session folders it makes 0777 (for machines shared by
several users). Any local process that can read that file connects to the GCS and runs code as the cluster's
user. Here each cluster has a token of its own, readable by its user only, in a folder only its user enters.

Ray's own folders stay 0777: every process Ray starts (each worker, each replica) sets its temp folder, session,
logs and sockets folders back to 0777 (ray._common.utils.try_to_create_directory), so a chmod would not hold.
What closes them is the folder they are in: the run folder, or /tmp/digits-ray-<hash>, 0700 and never touched
by Ray. Nobody else can enter a folder below it, whatever its mode.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

TOKEN_NAME = "auth_token"
PRIVATE = 0o700


def folder(path: Path) -> Path:
    """`path` as a folder only its user can enter: created with mode 0700, or an existing one of ours set to
    0700. A link, or a folder of another user (a name under /tmp someone else took first), is refused."""
    path.mkdir(parents=True, mode=PRIVATE, exist_ok=True)
    found = os.lstat(path)
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise SystemExit(f"rayserve: {path} is not a folder of this user; remove it or pick another --run")
    if stat.S_IMODE(found.st_mode) != PRIVATE:  # a folder from an earlier start (the runner makes it 0755)
        os.chmod(path, PRIVATE)
    return path


def new_token(run: Path) -> Path:
    """A fresh token in `<run>/auth_token`, the file created 0600 (never readable by others, not even for a
    moment), replacing the last start's. Tokens are 64 hex digits, as Ray's own generator makes them."""
    path = run / TOKEN_NAME
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
    return path


def token_environment(path: Path) -> dict:
    """What the cluster's processes (they inherit it) and its drivers read: token mode, and the token file.
    RAY_AUTH_TOKEN, which Ray would take before the file, must be absent (os.environ.pop)."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}
