"""Locust headless against one served endpoint; its statistics as JSON next to the printed table.

    make loadtest LOAD_TARGET=torchserve-grpc LOAD_USERS=10 LOAD_DURATION=20
    python -m benchmarks locust --target tfserving-rest --users 10 --seconds 20   # needs `make serve`

Locust's users (benchmarks/locust/locustfile.py) form a closed loop: N users, each sending its next
request when the last answer is in, so this measures throughput at a concurrency, not latency at
a rate (for that: benchmarks/openloop.py). Locust runs as a subprocess with the environment of
this one (DIGITS_ARTIFACTS, DIGITS_*_PORT); its CSV statistics become
<artifacts>/bench/load-locust-<target>.json (benchmarks/results.py): requests, errors, achieved rate,
and the latency keys every measurement here uses (benchmarks/timing.py `summarize`: n, mean_ms,
p50_ms, p90_ms, p99_ms, max_ms; Locust's own percentiles, which it rounds to 2-3 significant digits).
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import machine, results
from core import paths, registry

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# The locustfile's user class per served target, from its row (named, not imported: importing the
# locustfile patches gevent).
USER_CLASSES = {name: registry.TARGETS[name].load_user
                for name in registry.served() if registry.TARGETS[name].load_user}
TARGETS = tuple(USER_CLASSES)


def stats_from_csv(path: Path) -> dict:
    """The "Aggregated" row of Locust's <prefix>_stats.csv as our figures (ms, req/s)."""
    with open(path, newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    row = rows["Aggregated"]

    def number(key):
        value = row.get(key, "N/A")
        return None if value in ("N/A", "", None) else float(value)

    requests, errors = int(row["Request Count"]), int(row["Failure Count"])
    return {"requests": requests, "errors": errors, "achieved_rps": round(number("Requests/s") or 0.0, 2),
            "n": requests, "mean_ms": number("Average Response Time"), "p50_ms": number("50%"),
            "p90_ms": number("90%"), "p99_ms": number("99%"), "max_ms": number("Max Response Time")}


def run(target: str, users: int, seconds: int, root: Path, environ: dict | None = None) -> dict:
    """Run Locust headless for `seconds`; the figures, with Locust's exit status and its failures."""
    with tempfile.TemporaryDirectory() as scratch:
        prefix = Path(scratch) / "locust"
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(users),
                   "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--stop-timeout", "5", "--csv", str(prefix),
                   "--loglevel", "WARNING", "--skip-log-setup", USER_CLASSES[target]]
        env = {**os.environ, **(environ or {}), "DIGITS_ARTIFACTS": str(root), "PYTHONPATH": str(paths.REPO_ROOT)}
        done = subprocess.run(command, env=env, cwd=paths.REPO_ROOT, capture_output=True, text=True,
                              timeout=seconds + 120)
        stats_file = prefix.parent / "locust_stats.csv"
        if not stats_file.exists():
            raise RuntimeError(f"locust wrote no statistics (exit {done.returncode}):\n{done.stderr[-3000:]}")
        figures = stats_from_csv(stats_file)
        failures_file = prefix.parent / "locust_failures.csv"
        failures = list(csv.DictReader(open(failures_file, newline=""))) if failures_file.exists() else []
    result = {"target": target, "users": users, "seconds": seconds, "locust_exit": done.returncode, **figures,
              "failures": [{"error": f["Error"], "count": int(f["Occurrences"])} for f in failures][:5]}
    if done.returncode != 0 and not figures["errors"]:  # no failed request to explain it: keep Locust's own words
        result["locust_stderr_tail"] = done.stderr[-2000:]
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, choices=TARGETS, help="the served endpoint")
    parser.add_argument("--users", type=int, default=10, help="concurrent Locust users (default: 10)")
    parser.add_argument("--seconds", type=int, default=20, help="run time, seconds (default: 20)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    print(f"locust: {args.users} users on {args.target} for {args.seconds} s (headless) ...", flush=True)
    result = {"command": results.command(__name__, argv), "machine": machine.describe(),
              **run(args.target, args.users, args.seconds, root)}
    if result["requests"] == 0:
        raise SystemExit(f"error: no request was answered on {args.target}: is the server up (`make serve`), and "
                         f"are DIGITS_*_PORT and DIGITS_ARTIFACTS those it runs with? Locust said:\n"
                         f"{result.get('locust_stderr_tail', '')}")
    out = results.write(result, root, f"load-locust-{args.target}")
    print(f"{'endpoint':<18}{'users':>6}{'requests':>10}{'errors':>8}{'req/s':>9}"
          + "".join(f"{name:>8}" for name in ("p50 ms", "p90 ms", "p99 ms", "max ms")))
    print(f"{args.target:<18}{args.users:>6}{result['requests']:>10}{result['errors']:>8}{result['achieved_rps']:>9.1f}"
          + "".join(f"{result[k] if result[k] is not None else float('nan'):>8.0f}"
                    for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")))
    print(f"wrote {out}")
    if result["errors"]:
        print(f"failures: {result['failures']}", file=sys.stderr)
        raise SystemExit(1)
    return result
