"""What the fault-injection tests measured, for REPORT.md's reliability section (`make faults`).

    from tests.faults import record
    record("TorchServe worker SIGKILLed under load", "torchserve-rest", sent=412, answered=410,
           explicit_errors=2, lost=0, longest_wait_s=0.9)

A fault test calls `record` once per target with the counts it asserted on: the fault it injected,
the target, and numbers (requests sent, answered, refused with an explicit error, lost, the longest
wait, ...). When DIGITS_FAULTS_REPORT names a file (`make faults` sets it), the record is appended
to it as one JSON line; otherwise nothing is written, so the tests behave the same either way.

A battery too heavy for `make test`'s budget runs a reduced form there (fewer connections, shorter
calls, fewer configurations) and its full form under `make faults` (DIGITS_BATTERY=full; CI runs it
after `make test`): `battery(reduced, full)` gives the value in force, and such a test is marked
`battery` (or `fault`) so that `make faults` runs it. A part of a battery that only the full form
runs (the same fault on another server) is marked `full_battery`: `make test` deselects it and says
how many it left out.
"""
from __future__ import annotations

import fcntl
import json
import os
import time

ENVIRONMENT = "DIGITS_FAULTS_REPORT"
BATTERY = "DIGITS_BATTERY"  # "full" under `make faults`; anything else: the reduced form


def full_battery() -> bool:
    """Whether this run holds the batteries to their full form (`make faults`)."""
    return os.environ.get(BATTERY) == "full"


def battery(reduced, full):
    """`full` under `make faults`, `reduced` in `make test`."""
    return full if full_battery() else reduced


def record(fault: str, target: str, **counts) -> None:
    """Append one fault's counts for `target` to the file DIGITS_FAULTS_REPORT names (if set)."""
    path = os.environ.get(ENVIRONMENT)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    line = json.dumps({"fault": fault, "target": target, "counts": counts, "test": test,
                       "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, default=str)
    with open(path, "a") as out:  # several test processes may append at once: one line each, whole
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(line + "\n")


def record_load(fault: str, target: str, counts: dict, **more) -> None:
    """`record` for an open-loop load's result (benchmarks/openloop.py): every request scheduled, how
    each ended (the outcomes that happened), and the kinds of failure seen."""
    from benchmarks.openloop import OUTCOMES

    ended = {outcome: counts[outcome] for outcome in OUTCOMES if counts.get(outcome)}
    kinds = ", ".join(f"{kind} x{n}" for kind, n in counts.get("kinds", {}).items())
    record(fault, target, scheduled=counts["scheduled"], **ended, in_flight=counts.get("in_flight", 0),
           **({"failures": kinds} if kinds else {}), **more)
