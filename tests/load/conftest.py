"""The load smoke tests run against both servers, started once for this package (tests/integration's fixture)."""
from tests.integration.conftest import served, test_split  # noqa: F401  (package-scoped: servers for tests/load)
