"""serving/rayserve/private.py without Ray: the cluster's token file and folders (the cluster itself:
tests/integration/test_rayserve_private.py)."""
from __future__ import annotations

import os
import stat

import pytest

from serving.rayserve import private


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_new_token_is_0600_whatever_the_umask_and_replaces_the_last(tmp_path):
    old_umask = os.umask(0)  # the most open umask: the mode comes from os.open, not from it
    try:
        first = private.new_token(tmp_path)
        second = private.new_token(tmp_path)
    finally:
        os.umask(old_umask)
    assert first == second == tmp_path / private.TOKEN_NAME and mode(second) == 0o600
    token = second.read_text()
    assert len(token) == 64 and int(token, 16) >= 0


def test_a_token_is_never_written_through_a_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / private.TOKEN_NAME).symlink_to(elsewhere)
    private.new_token(tmp_path / "run")  # the link is removed, not followed
    assert not elsewhere.exists() and not (tmp_path / "run" / private.TOKEN_NAME).is_symlink()


def test_folders_are_made_or_set_0700_and_links_refused(tmp_path):
    assert mode(private.folder(tmp_path / "new" / "run")) == 0o700
    (tmp_path / "old").mkdir()
    os.chmod(tmp_path / "old", 0o755)  # a folder from an earlier start
    assert mode(private.folder(tmp_path / "old")) == 0o700
    (tmp_path / "link").symlink_to(tmp_path / "old")
    with pytest.raises(SystemExit, match="not a folder of this user"):
        private.folder(tmp_path / "link")


def test_the_environment_names_token_mode_and_the_file(tmp_path):
    token = tmp_path / "auth_token"
    assert private.token_environment(token) == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
