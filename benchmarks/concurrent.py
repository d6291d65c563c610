"""Many requests in flight on a server, default settings against the throughput profile, in one run.

    make bench-serving                                   # its second step (after benchmarks.one_client)
    python -m benchmarks concurrent                    # 64 in flight: TF server gRPC, TorchServe REST
    python -m benchmarks concurrent --concurrency 16 64 --settings default throughput

For each server setting (deploy/local/settings.py: "default" = the checked-in configs, the
committed profiles of deploy/local/profiles.json) it starts the servers the targets need in their
own variant root on free ports (benchmarks/variants.py, deploy/local/runner.py), has the native
generator (benchmarks/native.py: NVIDIA's perf_analyzer, a C++ client that costs the shared cores
little) keep `--concurrency` requests in flight on each target, then stops them. Every row: infer/s,
client p50/p90/p95/p99 and the generator's own CPU (`generator_limited` when it was the limit); the
ratio of each setting's infer/s to the default's, taken in this run. Writes
<artifacts>/bench/concurrent.json (benchmarks/results.py) and prints a table. The machine is shared:
compare the settings of one run, not runs.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import machine, native, results, variants
from core import paths, registry
from deploy.local import runner, servers
from deploy.local import settings as settings_mod
from serving.endpoints import free_endpoints


def measure_setting(root: Path, name: str, targets: list[str], concurrency: list[int], seconds: float) -> dict:
    """Start the targets' servers with settings `name`, measure each target at each concurrency, stop them."""
    settings = settings_mod.preset(name)
    variant = variants.prepare(root, f"concurrent-{name}")
    endpoints = free_endpoints()
    needed = tuple(dict.fromkeys(registry.TARGETS[target].server for target in targets))
    print(f"\n== settings {name!r}: {', '.join(needed)}", flush=True)
    runner.stop(variant)  # left over from an interrupted run
    rows = []
    try:
        runner.start(variant, endpoints, timeout=300, settings=settings, only=needed)
        for target in targets:
            for count in concurrency:
                print(f"  {target}, {count} in flight:", flush=True)
                try:
                    row = native.run(target, variant, endpoints, count, seconds)
                except native.NativeError as error:  # a failed measurement is a result, named
                    row = {"target": target, "concurrency": count, "error": str(error)[:500]}
                rows.append({"setting": name, **row})
                print(f"  {target}, {count} in flight: " + (row.get("error") or
                      f"{row['infer_per_s']:g} infer/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms"
                      + (" (generator-limited)" if row["generator_limited"] else "")), flush=True)
    finally:
        runner.stop(variant)
    return {"server_settings": settings.to_dict(), "rows": rows}


def ratios(rows: list[dict], base: str = "default") -> list[dict]:
    """Each (target, concurrency, setting)'s infer/s over the `base` setting's in the same run."""
    by_key = {(r["target"], r["concurrency"], r["setting"]): r.get("infer_per_s") for r in rows}
    out = []
    for (target, count, setting), rate in by_key.items():
        reference = by_key.get((target, count, base))
        if setting != base and rate and reference:
            out.append({"target": target, "concurrency": count, "setting": setting, "over": base,
                        "ratio": round(rate / reference, 2)})
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=list(native.SERVICES), choices=list(native.SERVICES),
                        help=f"served targets (default: {' '.join(native.SERVICES)})")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[64], help="requests in flight (default: 64)")
    parser.add_argument("--settings", nargs="+", default=["default", "latency", "throughput"],
                        choices=settings_mod.PRESET_NAMES,
                        help="server settings to compare, the first is the reference (default: default latency "
                             "throughput)")
    parser.add_argument("--seconds", type=float, default=3.0, help="perf_analyzer's window, seconds (default: 3)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        generator = native.version()
    except native.NativeError as error:
        raise SystemExit(f"error: {error}") from None
    began = time.monotonic()
    print(f"concurrent: {', '.join(args.targets)} at {', '.join(map(str, args.concurrency))} in flight, settings "
          f"{', '.join(args.settings)}; generator {generator}", flush=True)
    by_setting = {name: measure_setting(root, name, args.targets, args.concurrency, args.seconds)
                  for name in args.settings}
    rows = [row for entry in by_setting.values() for row in entry["rows"]]
    report = {"command": results.command(__name__, argv), "machine": machine.describe(),
              "generator": generator, "window_seconds": args.seconds, "tfserving": servers.tfserving(
                  root, free_endpoints()).describe,
              "server_settings": {name: entry["server_settings"] for name, entry in by_setting.items()},
              "rows": rows, "ratios": ratios(rows, args.settings[0]), "seconds": round(time.monotonic() - began, 1)}
    out = results.write(report, root, "concurrent")
    print(f"\n{'target':<18}{'in flight':>10}{'setting':>12}{'infer/s':>10}{'p50 ms':>9}{'p99 ms':>9}  generator")
    for row in rows:
        if "error" in row:
            print(f"{row['target']:<18}{row['concurrency']:>10}{row['setting']:>12}  failed: {row['error'][:80]}")
            continue
        print(f"{row['target']:<18}{row['concurrency']:>10}{row['setting']:>12}{row['infer_per_s']:>10g}"
              f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}  {row['generator_cpu']['cpu_cores']:.2f} cores"
              + (" (LIMITED)" if row["generator_limited"] else ""))
    for ratio in report["ratios"]:
        print(f"{ratio['target']} at {ratio['concurrency']} in flight: {ratio['setting']} {ratio['ratio']:g}x "
              f"the {ratio['over']}'s infer/s")
    print(f"\nwrote {out} in {report['seconds']:.0f} s ({report['command']})")
    return report
