"""The settings search's grid and its rule for picking the latency and throughput profiles, on made-up points."""
from __future__ import annotations

import dataclasses
import json

import pytest

from benchmarks import grid, search
from deploy.local import settings


def point(name: str, p50s: tuple, capacities: tuple, error: str | None = None, settings_fields: dict | None = None):
    targets = {f"t{i}": {"one_client": {"p50_ms": p50, "p99_ms": p50 * 2}, "capacity_rps": capacity}
               for i, (p50, capacity) in enumerate(zip(p50s, capacities, strict=False))}
    out = {"name": name, "knobs": {}, "settings": settings_fields or {}, "targets": targets}
    if error:
        out["error"] = error
    return out


def test_a_point_counts_its_slowest_endpoint_and_its_weakest():
    assert grid.score(point("a", (2.0, 5.0), (900, 300))) == (5.0, 300)
    assert grid.score(point("a", (2.0,), (900,), error="did not start")) is None
    broken = point("b", (2.0, 1.0), (900, 900))
    broken["targets"]["t1"] = {"error": "ConnectionError: reset"}
    assert grid.score(broken) is None


def test_throughput_is_the_highest_capacity_and_ties_go_to_the_lower_p50():
    points = [point("default", (8.0,), (1000,)), point("big", (9.0,), (1500,)), point("bigfast", (4.0,), (1460,)),
              point("fast", (1.0,), (600,))]
    assert grid.pick(points)["throughput"] == "bigfast"  # 1460 is within 5% of 1500, and answers faster


def test_latency_is_the_lowest_p50_among_points_that_still_carry_load():
    points = [point("default", (8.0,), (1000,)), point("fragile", (0.5,), (100,)), point("fast", (1.0,), (600,)),
              point("broken", (0.1,), (2000,), error="did not start")]
    chosen = grid.pick(points)
    assert chosen == {"latency": "fast", "throughput": "default"}  # fragile: under half the best capacity
    with pytest.raises(ValueError, match="no grid point was measured without errors"):
        grid.pick([points[-1]])


def test_grids_start_with_the_default_and_name_each_point_by_its_knobs():
    for server in grid.grids():  # every row of core/servers.py that names a grid
        for size in ("small", "full"):
            points = grid.points(server, size)
            assert points[0] == {"name": "default", "knobs": {}, "settings": {}}
            assert len({p["name"] for p in points}) == len(points)
    assert len(grid.points("torchserve", "small")) <= 10  # ~1 minute a point: the small grid stays ~10 minutes
    two = grid.points("torchserve", "small", ["default", "b1-omp2"])
    assert two[1]["settings"] == {"torchserve": {"batchSize": 1}, "torchserve_env": {"OMP_NUM_THREADS": "2"}}
    (netty,) = grid.points("torchserve", "small", ["b1-netty1-client1"])
    assert netty["settings"] == {"torchserve": {"batchSize": 1},
                                 "torchserve_config": {"number_of_netty_threads": 1, "netty_client_threads": 1}}
    assert grid.point_name({"batching": False, "intra": 1}) == "batching-off-intra1"
    with pytest.raises(ValueError, match="nope not in the small grid"):
        grid.points("tfserving", "small", ["nope"])
    with pytest.raises(ValueError, match="unknown knob 'w'"):
        grid.settings_of("tfserving", {"w": 2})


def test_every_knob_names_a_settings_field():
    for server, found in grid.grids().items():
        for knob, (field, _) in found.knobs.items():
            assert field in settings.server_fields().get(server, ()), (
                f"{server}: knob {knob!r} sets ServerSettings.{field}, which is not among its row's `settings` "
                "(core/servers.py): a search of one server changes only its own fields")


def test_every_settings_field_belongs_to_a_server():
    own = {field for fields in settings.server_fields().values() for field in fields}
    known = {field.name for field in dataclasses.fields(settings.ServerSettings)} - {"name"}
    assert own <= known, f"rows of core/servers.py name settings ServerSettings lacks: {sorted(own - known)}"
    assert known <= own, (f"ServerSettings fields {sorted(known - own)} belong to no server: name them in their "
                          "row's `settings` (core/servers.py)")


def test_the_searched_servers_are_the_rows_with_a_grid():
    from core import servers

    assert list(search.searched()) == list(grid.grids()) == servers.searched()
    for server, framework in search.searched().items():  # its in-process baseline is its framework's
        assert framework in grid_frameworks(), (f"{server}: its row (core/servers.py) names a grid but no "
                                                "`framework`: the search times that framework's model in-process")


def grid_frameworks() -> set:
    from core import registry

    return set(registry.IN_PROCESS)


def test_written_profiles_take_each_searched_server_and_keep_the_others(tmp_path):
    committed = tmp_path / "profiles.json"
    committed.write_text(json.dumps({"chosen": {"tfserving": {"latency": "intra1", "throughput": "default"}},
                                     "profiles": {
                                         "latency": {"tfserving_flags": {"tensorflow_intra_op_parallelism": 1}},
                                         "throughput": {}}}))
    ts = {"torchserve": {"batchSize": 1}}
    result = {"command": "python -m benchmarks search", "measured_at": "now", "machine": {},
              "servers": {"torchserve": {"profiles": {"latency": "b1", "throughput": "default"},
                                         "points": [point("default", (8.0,), (900,)),
                                                    point("b1", (1.0,), (800,), settings_fields=ts)]}}}
    search.write_profiles(result, committed)
    profiles = settings.load_profiles(committed)
    assert profiles["latency"].torchserve == ts["torchserve"]
    assert profiles["latency"].tfserving_flags == {"tensorflow_intra_op_parallelism": 1}  # kept
    assert profiles["throughput"] == settings.ServerSettings(name="throughput")  # the default point: no changes
    written = json.loads(committed.read_text())
    assert written["chosen"] == {"tfserving": {"latency": "intra1", "throughput": "default"},
                                 "torchserve": {"latency": "b1", "throughput": "default"}}
    assert written["rule"] == grid.rule()


def test_points_option_reads_bare_names_and_server_names():
    # A bare name applies to every searched server (each row with a grid), SERVER:NAME to that one.
    every = {server: ["default"] for server in search.searched()}
    assert search.parse_points(["default", "torchserve:b1"]) == {**every, "torchserve": ["default", "b1"]}
    assert "tfserving" in search.searched()
