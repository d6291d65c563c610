"""New SavedModel versions on disk, on servers of this module's own (the session's are read-only):
a version with no manifest entry is not served, and a new export is served without a restart."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import wait_for
from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.concerns("tfserving")]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def servers(trained_artifacts, tmp_path_factory):
    with own_servers(trained_artifacts, tmp_path_factory.mktemp("tfserving-versions"), only=("tfserving",)) as served:
        yield served


@pytest.fixture(scope="module")
def test_split(servers):
    from core import paths
    from training import data

    return data.load_split(paths.split_path(servers.root))["test"]


@pytest.fixture(scope="module")
def keras_probabilities(servers, test_split):
    import keras

    from core import manifest

    return keras.models.load_model(manifest.verify("keras_model", servers.root)).predict(test_split.x, verbose=0)


@pytest.fixture(scope="module")
def grpc_client(servers):
    from serving.tfserving.client import TFServingGrpc

    client = TFServingGrpc(servers.endpoints, root=servers.root)
    yield client
    client.close()


@pytest.fixture
def still_serving(grpc_client, test_split, keras_probabilities):
    yield
    np.testing.assert_allclose(grpc_client.predict(test_split.x[:3]), keras_probabilities[:3], atol=TOLERANCE)




def test_a_version_missing_from_the_manifest_is_not_served(servers, grpc_client, still_serving, spec):
    """Runs before the new-version test (file order): a copied version dir with no manifest entry."""
    from deploy.local.servers import tfserving_binary
    from serving.tfserving import configs

    if tfserving_binary() is not None:
        pytest.skip("the real tensorflow_model_server does not read the manifest (the runner checks it at start)")
    ((served_version, _),) = grpc_client.status()
    rogue = configs.base_path(servers.root) / "900"
    shutil.copytree(configs.base_path(servers.root) / str(served_version), rogue)
    try:
        log = servers.root / "run" / "tfserving" / "server.log"
        assert wait_for(lambda: f"not serving {spec.model_name} version 900" in log.read_text())
        assert grpc_client.status() == [(served_version, "AVAILABLE")]  # the previous version stays up
    finally:
        shutil.rmtree(rogue)


def test_a_version_refused_for_its_manifest_is_served_once_it_is_recorded(servers, grpc_client, still_serving, spec):
    """A folder seen before its manifest entry (a copy, an exporter racing the poll) is not refused
    for good: the server tries it again when the manifest changes."""
    from core import manifest
    from deploy.local.servers import tfserving_binary
    from serving.tfserving import configs

    if tfserving_binary() is not None:
        pytest.skip("the real tensorflow_model_server does not read the manifest (the runner checks it at start)")
    ((served_version, _),) = grpc_client.status()
    late = configs.base_path(servers.root) / "901"
    shutil.copytree(configs.base_path(servers.root) / str(served_version), late)
    log = servers.root / "run" / "tfserving" / "server.log"
    try:
        assert wait_for(lambda: f"not serving {spec.model_name} version 901" in log.read_text())
        manifest.record(configs.artifact_id(901), late, framework="tensorflow", precision="fp32", root=servers.root,
                        format="saved_model", version=901, signature="serving_default")
        assert wait_for(lambda: grpc_client.status() == [(901, "AVAILABLE")])
    finally:
        shutil.rmtree(late)
        assert wait_for(lambda: grpc_client.status() == [(served_version, "AVAILABLE")])


def test_a_new_export_is_served_without_restart(servers, grpc_client, test_split, keras_probabilities, spec):
    from serving.tfserving import export

    ((before, _),) = grpc_client.status()
    new_version = int(export.export(servers.root).name)
    assert new_version > before
    assert wait_for(lambda: grpc_client.status() == [(new_version, "AVAILABLE")])
    response = grpc_client.predict_tensors({spec.input_name: test_split.x[:2]})
    assert response.model_spec.version.value == new_version
    np.testing.assert_allclose(grpc_client.predict(test_split.x[:2]), keras_probabilities[:2], atol=TOLERANCE)

