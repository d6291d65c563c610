"""TorchServe's key keeper (serving/torchserve/keys.py): when a key is due, how it is renewed through
a stand-in of TorchServe's token API, and how it runs TorchServe (umask, exit status)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from core import paths
from serving.torchserve import keys

API_KEY = "api-key"


def instant(seconds_from_now: float) -> str:
    """A Java Instant's text (nanoseconds, as TorchServe may write them) this far from now."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def write_key_file(path, inference_left: float, management_left: float, generation: int = 0) -> None:
    path.write_text(json.dumps({
        "management": {"key": f"management-{generation}", "expiration time": instant(management_left)},
        "inference": {"key": f"inference-{generation}", "expiration time": instant(inference_left)},
        "API": {"key": API_KEY}}))


@pytest.fixture
def token_api(tmp_path):
    """A stand-in for TorchServe's `/token?type=...`: with the API key, a new key of that kind valid 60 s."""
    key_file = tmp_path / "key_file.json"
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the base class's naming)
            kind = parse_qs(urlparse(self.path).query)["type"][0]
            calls.append(kind)
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self.send_response(400)
                self.end_headers()
                self.wfile.write(b'{"message": "Token Authentication failed."}')
                return
            data = json.loads(key_file.read_text())
            data[kind] = {"key": data[kind]["key"] + "-renewed", "expiration time": instant(60)}
            key_file.write_text(json.dumps(data))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield keys.Keeper(f"http://127.0.0.1:{httpd.server_port}", key_file, lifetime_s=60), key_file, calls
    httpd.shutdown()
    httpd.server_close()


def test_java_instants_with_nanoseconds_are_read():
    assert keys.expires_at("2026-12-04T04:14:03.123456789Z") == pytest.approx(
        datetime(2026, 12, 4, 4, 14, 3, 123456, tzinfo=UTC).timestamp())
    assert keys.expires_at("2026-12-04T04:14:03Z") == datetime(2026, 12, 4, 4, 14, 3, tzinfo=UTC).timestamp()


def test_a_key_is_due_when_half_its_lifetime_is_left(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key_file(key_file, inference_left=25, management_left=45)
    assert keys.due(keys.read_keys(key_file), lifetime_s=60, now=datetime.now(UTC).timestamp()) == ["inference"]


def test_due_keys_are_renewed_with_the_api_key_and_fresh_ones_left_alone(token_api):
    keeper, key_file, calls = token_api
    write_key_file(key_file, inference_left=5, management_left=-1)  # one nearly expired, one expired
    assert keeper.tick() == ["inference", "management"]
    renewed = json.loads(key_file.read_text())
    assert (renewed["inference"]["key"], renewed["management"]["key"]) == \
        ("inference-0-renewed", "management-0-renewed")
    assert keeper.tick() == [] and calls == ["inference", "management"]  # now valid for 60 s: nothing due


def test_a_refused_renewal_is_reported_and_tried_again(token_api, capsys):
    keeper, key_file, calls = token_api
    write_key_file(key_file, inference_left=5, management_left=50)
    data = json.loads(key_file.read_text())
    data["API"]["key"] = "not-the-api-key"
    key_file.write_text(json.dumps(data))
    assert keeper.tick() == [] and keeper.tick() == []
    assert calls == ["inference", "inference"]  # tried on every tick
    out = capsys.readouterr().out
    assert out.count("renewing the inference key failed (HTTP 400") == 1  # reported once per interval


def test_a_missing_or_half_written_key_file_is_waited_for(token_api):
    keeper, key_file, calls = token_api
    assert keeper.tick() == []
    key_file.write_text('{"management": {"key": "m", "expir')  # TorchServe rewrites it in place
    assert keeper.tick() == [] and calls == []


def test_the_lifetime_and_management_address_come_from_torchserve_config(tmp_path):
    config = tmp_path / "config.properties"
    config.write_text("# token_expiration_min=5\nmanagement_address=http://127.0.0.1:9181\ntoken_expiration_min=1\n")
    keeper = keys.keeper_for(["torchserve", "--start", "--ts-config", str(config)], tmp_path)
    assert (keeper.management, keeper.lifetime_s, keeper.key_file) == ("http://127.0.0.1:9181", 60.0,
                                                                       tmp_path / "key_file.json")
    config.write_text("inference_address=http://127.0.0.1:8080\n")
    assert keys.keeper_for(["--ts-config", str(config)], tmp_path).lifetime_s == keys.DEFAULT_LIFETIME_MIN * 60


def test_torchserve_runs_under_umask_077_and_its_exit_status_is_kept(tmp_path):
    """The key file TorchServe creates is never readable by others, not even before its chmod."""
    (tmp_path / "config.properties").write_text("token_expiration_min=1\n")
    child = "import pathlib, sys; pathlib.Path('key_file.json').write_text('{}'); sys.exit(3)"
    script = paths.REPO_ROOT / "serving" / "torchserve" / "keys.py"
    result = subprocess.run([sys.executable, str(script), "--", sys.executable, "-c", child,
                             "--ts-config", str(tmp_path / "config.properties")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert (tmp_path / "key_file.json").stat().st_mode & 0o777 == 0o600
    assert "renewing TorchServe's keys at half their lifetime (1 min)" in result.stdout


def test_without_a_torchserve_command_it_says_how_to_run_it():
    script = paths.REPO_ROOT / "serving" / "torchserve" / "keys.py"
    result = subprocess.run([sys.executable, str(script), "torchserve"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "usage: python serving/torchserve/keys.py -- torchserve" in result.stderr


def test_a_key_file_written_by_the_project_is_never_readable_by_others(tmp_path, monkeypatch):
    """paths.write_atomic(mode=0o600), as the container launcher copies TorchServe's key file: the
    temporary file already has the mode when the bytes go in, and the umask cannot widen it."""
    import os

    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (seen.append(os.stat(source).st_mode & 0o777),
                                                                real_replace(source, target)))
    old_umask = os.umask(0)
    try:
        written = paths.write_atomic(tmp_path / "run" / "key_file.json", b'{"inference": {"key": "k"}}', mode=0o600)
    finally:
        os.umask(old_umask)
    assert seen == [0o600] and written.stat().st_mode & 0o777 == 0o600
    assert json.loads(written.read_text()) == {"inference": {"key": "k"}}
