"""deploy/k8s/networkpolicy.yaml read as a cluster enforces it: which pod may open which port of which.

A small evaluator of NetworkPolicy's rules (label selectors, `from`/`to` peers, ports by name or
number, the union of every policy selecting a pod) over the Deployments' own pods, a client pod
(label digits-everywhere/model-client), a metrics scraper (digits-everywhere/metrics-scraper), an
unlabelled pod of the namespace and the cluster's DNS. The page's pod reaches no model server;
nothing but a client connects out.
"""
from __future__ import annotations

import pytest

from tests.deploy.test_k8s import DEPLOYMENTS, MODEL_SERVERS, of_kind

NAMESPACE = "digits"
CLIENT = {"digits-everywhere/model-client": "true"}
SCRAPER = {"digits-everywhere/metrics-scraper": "true"}
DNS = ("kube-system", {"k8s-app": "kube-dns"}, {53: "dns"})


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) picks these labels; {} picks all."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        held = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not held:
            return False
    return True


def peer_matches(peer: dict, namespace: str, labels: dict) -> bool:
    """A `from`/`to` peer: a podSelector alone means this namespace; a namespaceSelector names others."""
    if "ipBlock" in peer:
        return False  # none here; pods are not addressed by IP in these rules
    if "namespaceSelector" in peer:
        ns_ok = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
    else:
        ns_ok = namespace == NAMESPACE
    return ns_ok and selects(peer.get("podSelector", {}), labels)


def port_matches(rule: dict, port: int, names: dict) -> bool:
    return "ports" not in rule or any(entry.get("port") in (port, names.get(port)) for entry in rule["ports"])


def allowed(policies, direction: str, pod: dict, other: tuple, port: int, names: dict) -> bool:
    """Whether `pod` (its namespace is ours) may send (Egress) to / receive (Ingress) from `other` on `port`."""
    kind, peers = ("Egress", "to") if direction == "Egress" else ("Ingress", "from")
    selecting = [p for p in policies if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod)]
    if not selecting:
        return True  # a pod no policy selects is open that way
    other_namespace, other_labels = other
    return any(peers not in rule or any(peer_matches(peer, other_namespace, other_labels) for peer in rule[peers])
               for policy in selecting for rule in policy["spec"].get(direction.lower(), [])
               if port_matches(rule, port, names))


def reaches(source: dict, target: tuple, port: int) -> bool:
    """Whether a pod of our namespace with labels `source` may open `port` of `target` (namespace, labels, names)."""
    policies = list(of_kind("NetworkPolicy").values())
    namespace, labels, names = target
    outbound = allowed(policies, "Egress", source, (namespace, labels), port, names)
    inbound = namespace != NAMESPACE or allowed(policies, "Ingress", labels, (NAMESPACE, source), port, names)
    return outbound and inbound


def pods() -> dict:
    """{deployment: (namespace, pod labels, {container port: port name})}."""
    found = {}
    for name, deployment in of_kind("Deployment").items():
        template = deployment["spec"]["template"]
        (container,) = template["spec"]["containers"]
        found[name] = (NAMESPACE, template["metadata"]["labels"],
                       {p["containerPort"]: p["name"] for p in container["ports"]})
    return found


def ports_named(target: tuple, *names: str) -> list[int]:
    return [port for port, name in target[2].items() if name in names]


@pytest.mark.parametrize("server", sorted(MODEL_SERVERS))
def test_the_page_s_pod_reaches_no_model_server(server):
    web, target = pods()["web"][1], pods()[server]
    assert [port for port in target[2] if reaches(web, target, port)] == []
    assert [port for port in target[2] if reaches({"app": "anything-else"}, target, port)] == []  # nor any other pod


@pytest.mark.parametrize("server", sorted(MODEL_SERVERS))
def test_a_client_reaches_inference_and_never_metrics(server):
    target = pods()[server]
    inference = ports_named(target, "http", "grpc")
    assert inference and all(reaches(CLIENT, target, port) for port in inference)
    assert not any(reaches(CLIENT, target, port) for port in ports_named(target, "metrics"))
    assert reaches(CLIENT, DNS, 53)  # it finds the Service by name


def test_only_a_scraper_reads_torchserve_s_metrics():
    torchserve = pods()["torchserve"]
    (metrics,) = ports_named(torchserve, "metrics")
    assert reaches(SCRAPER, torchserve, metrics)
    assert not reaches(CLIENT, torchserve, metrics) and not reaches(pods()["web"][1], torchserve, metrics)
    assert not any(reaches(SCRAPER, torchserve, port) for port in ports_named(torchserve, "http", "grpc"))


@pytest.mark.parametrize("name", DEPLOYMENTS)  # every server's pod and the page's
def test_no_server_and_not_the_page_connects_out_dns_included(name):
    source = pods()[name][1]
    assert not reaches(source, DNS, 53)
    assert not reaches(source, ("elsewhere", {"app": "anything"}, {443: "https"}), 443)
    assert not any(reaches(source, target, port) for other, target in pods().items() if other != name
                   for port in target[2])


def test_the_evaluator_can_say_yes_and_no():
    """On a made-up pair of policies: the evaluator is not a constant."""
    policy = {"spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                    "ports": [{"port": "http"}]}]}}
    server = {"app": "server"}
    assert allowed([policy], "Ingress", server, (NAMESPACE, {"role": "client"}), 80, {80: "http"})
    assert not allowed([policy], "Ingress", server, (NAMESPACE, {"role": "client"}), 81, {81: "metrics"})
    assert not allowed([policy], "Ingress", server, (NAMESPACE, {"role": "web"}), 80, {80: "http"})
    assert not allowed([policy], "Ingress", server, ("other", {"role": "client"}), 80, {80: "http"})
    assert allowed([policy], "Ingress", {"app": "web"}, (NAMESPACE, {}), 80, {})  # selected by none: open


def test_torchserve_s_management_listens_on_loopback_in_every_container_config():
    """What no policy can open: TorchServe's management APIs (REST, gRPC) bind the container's loopback in
    every config a container reads, and no TorchServe config is left in deploy/kserve/."""
    from tests.deploy.conftest import DEPLOY

    configs = sorted((DEPLOY / "config").rglob("torchserve.properties"))
    assert len(configs) == 3  # the default and the two measured profiles
    for path in configs:
        props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")
        assert props["management_address"].startswith("http://127.0.0.1:"), path
        assert props["grpc_management_address"] == "127.0.0.1", path
        assert props["enable_model_api"] == "false", path  # and no model registered through it
    assert not list((DEPLOY / "kserve").rglob("*.properties"))
