"""TorchServe's management side, on servers of this module's own: registration only from the
model store, and a restart under load that loses nothing and keeps the published version.

The lock-down: with the management key, a remote URL, a file URL outside the store, an absolute
path and a relative escape are each refused with a 4xx, nothing is fetched and nothing is loaded.
The restart: version 2 is published, TorchServe is stopped and started again while REST and gRPC
clients (an open loop, benchmarks/openloop.py) keep sending; the clients read the new key and go on, no request is
lost or fails, and version 2 is still the default afterwards.
"""
from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from benchmarks.openloop import OUTCOMES, OpenLoop
from serving.retry import RetryPolicy
from tests.conftest import wait_for
from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.concerns("torchserve")]
RATE = 5.0  # requests/s per endpoint: what one client thread keeps up with on a busy 2-core machine
# Long enough to ride out a TorchServe restart (Java start, model load, a worker) on a busy machine.
PATIENT = RetryPolicy(attempts=200, backoff=0.1, max_backoff=1.0, deadline=240.0)


@pytest.fixture(scope="module")
def servers(trained_artifacts, tmp_path_factory):
    with own_servers(trained_artifacts, tmp_path_factory.mktemp("torchserve-admin"), only=("torchserve",)) as served:
        yield served


def management(served):
    from serving.torchserve.client import read_token

    return (served.endpoints.url("torchserve_management"),
            {"Authorization": f"Bearer {read_token(served.root, 'management')}"})


def registered_versions(served) -> list[str]:
    base, headers = management(served)
    answer = requests.get(f"{base}/models/{served.endpoints.model_name}/all", headers=headers, timeout=30)
    return sorted(m["modelVersion"] for m in answer.json())


@pytest.fixture
def outside_archive(servers, tmp_path):
    """A valid archive (version 9.0) in a folder outside the model store, also offered over http."""
    from serving.torchserve import archive

    built = archive.build(servers.root, "9.0")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(built, outside / "evil.mar")
    fetched = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the base class's naming)
            fetched.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(outside)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield outside / "evil.mar", f"http://127.0.0.1:{httpd.server_address[1]}/evil.mar", fetched
    httpd.shutdown()
    httpd.server_close()


def test_registration_from_anywhere_but_the_model_store_is_refused(servers, outside_archive):
    from serving.torchserve import archive

    path, url, fetched = outside_archive
    base, headers = management(servers)
    for source in (url, url.replace("http://", "https://"), f"file://{path}", str(path),
                   f"../../{path.parent.name}/{path.name}"):
        answer = requests.post(f"{base}/models", params={"url": source, "initial_workers": 1, "synchronous": "true"},
                               headers=headers, timeout=120)
        assert 400 <= answer.status_code < 500, (source, answer.status_code, answer.text)
    assert fetched == []  # nothing was downloaded
    assert registered_versions(servers) == ["1.0"]  # nothing was loaded
    assert not (archive.model_store(servers.root) / "evil.mar").exists()


def test_the_running_config_allows_only_this_store(servers):
    import re

    from serving.torchserve import archive

    config = (servers.root / "run" / "torchserve" / "config.properties").read_text()
    store = archive.model_store(servers.root).resolve()
    assert f"allowed_urls={archive.store_only_urls(store)}\n" in config
    pattern = re.compile(archive.store_only_urls(store), re.IGNORECASE)  # as TorchServe matches it
    assert pattern.fullmatch(f"file://{store}/digits-v2.0.mar")
    for refused in (f"file://{store}/../x.mar", f"file://{store}x/x.mar", "http://127.0.0.1/x.mar",
                    "file:///tmp/x.mar"):
        assert not pattern.fullmatch(refused), refused


def test_a_restart_under_load_loses_nothing_and_keeps_the_published_default(servers):
    from core import paths
    from deploy.local import runner, update
    from edge.eager import TorchEagerPredictor
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest
    from training import data

    ep, root = servers.endpoints, servers.root
    images = data.load_split(paths.split_path(root))["test"].x[:4]
    expected = TorchEagerPredictor(root).predict(images)
    assert update.TorchServeVersions(root, ep).publish() == "2.0"
    loads = {
        "torchserve-rest": OpenLoop(lambda: TorchServeRest(ep, root=root, retry=PATIENT), [images],
                                    expected=[expected], rate=RATE, threads=1),
        "torchserve-grpc": OpenLoop(lambda: TorchServeGrpc(ep, root=root, retry=PATIENT), [images],
                                    expected=[expected], rate=RATE, threads=1),
    }
    for load in loads.values():
        load.start()
    assert wait_for(lambda: all(load.snapshot()['answered'] >= 5 for load in loads.values()), 60)
    old_key = (root / "run" / "torchserve" / "key_file.json").read_text()
    assert runner.stop_one("torchserve", root)
    runner.start(root, ep, timeout=300, only=("torchserve",))
    assert (root / "run" / "torchserve" / "key_file.json").read_text() != old_key  # new keys were written
    ok_after = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_after[name] + 5 for name, load in loads.items()), 120)
    counts = {name: load.stop() for name, load in loads.items()}
    print(f"\nTorchServe restarted during load (version 2 published before): {counts}")
    for name, numbers in counts.items():
        # every scheduled request ended as exactly one outcome, none still in flight, no wrong answer
        assert numbers["in_flight"] == 0 and numbers["scheduled"] == sum(numbers[o] for o in OUTCOMES), numbers
        # The one request a thread has in flight when the server stops can fail, explicitly: the
        # stopping frontend answers it "Worker died." (HTTP 500 / INTERNAL), or gRPC's shutdown
        # cancels it. Not retried: it may have reached the model (serving/retry.py retries only
        # what says "not processed"). Everything sent while the server was down waited for it.
        assert numbers["failed"] <= loads[name].threads, (name, numbers)
        for kind, example in numbers["examples"].items():
            explicit = "Worker died." in example or kind == "reset: CANCELLED"
            assert kind in ("errors: HTTP 500", "errors: INTERNAL", "reset: CANCELLED") and explicit, (name, numbers)
    versions = update.TorchServeVersions(root, ep).versions()
    assert [(v["version"], v["default"], v["ready"]) for v in versions] == [("1.0", False, True), ("2.0", True, True)]


