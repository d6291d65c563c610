"""Which targets a command works on: `TARGETS=` on make (`--targets` on the tools), every target by default.

    make deploy-all TARGETS="onnx-fp32 tflite-fp32"     # two targets
    make test TARGETS=edge                              # a group: every edge target
    python -m core.selection                            # make targets: the targets, the groups, their needs

A word is a target's name (core/registry.py) or a group derived from the rows: `all`, each kind (`edge`,
`browser`, `compiled`, `reference`, `in-process`, and `servers` for the served ones), each framework
(`torch`, `tensorflow`), each precision (`fp32`, `int8`), each server (`torchserve`, `kserve-torch`, ...)
each runtime's folder (`executorch`, `onnx`, `kserve`, ...) and each page runtime (`tfjs`,
`onnxruntime-web`, `litert`). A word that is none of these is refused
with the list. From the picked targets come what to install (`needs`: environments and system programs),
what to build (`steps`), which servers to start (`servers`): all read from the two tables, so a new row
is selectable the day it is added.
"""
from __future__ import annotations

import os

from core import environments, registry, servers

VARIABLE = "DIGITS_TARGETS"  # the pick, for the tools a command runs (the Makefile sets it from TARGETS)
KIND_GROUPS = {"server": "servers"}  # a kind whose group has another name


class SelectionError(ValueError):
    """A word that is no target and no group; the message lists both."""


def groups() -> dict[str, list[str]]:
    """Group name -> its targets (in table order), derived from the rows."""
    found: dict[str, list[str]] = {}

    def add(group: str, name: str) -> None:
        if name not in found.setdefault(group, []):
            found[group].append(name)

    for name, target in registry.TARGETS.items():
        add("all", name)
        add(KIND_GROUPS.get(target.kind, target.kind), name)
        add(target.framework, name)
        add(target.precision, name)
        if target.server is not None:
            add(target.server, name)
        parts = target.folder.split("/")
        if target.page is not None:  # the page's rows share its folder: grouped by the runtime they load
            add(target.page.adapter, name)
        elif len(parts) > 1 and target.kind != "browser":  # a runtime's own folder (edge/onnx, serving/kserve)
            add(parts[-1].replace("_", "-"), name)
    return found


def resolve(words=None) -> list[str]:
    """The target names `words` (names or groups, a string or a list; None or empty: every target) stand
    for, in table order."""
    if isinstance(words, str):
        words = words.split()
    if not words:
        return list(registry.TARGETS)
    known = groups()
    unknown = [word for word in words if word not in registry.TARGETS and word not in known]
    if unknown:
        raise SelectionError(
            f"unknown target or group {', '.join(map(repr, unknown))}.\n"
            f"targets: {' '.join(registry.TARGETS)}\ngroups: {' '.join(sorted(known))}\n"
            "(`make targets` lists them with what each needs)")
    picked = {name for word in words for name in known.get(word, [word])}
    return [name for name in registry.TARGETS if name in picked]


def from_environment() -> list[str]:
    """The targets picked for this command ($DIGITS_TARGETS; every target when it is unset or empty)."""
    return resolve(os.environ.get(VARIABLE, ""))


def pick(words: str | None = None) -> list[str]:
    """A tool's `--targets` (names or groups) when given, else the pick of the command ($DIGITS_TARGETS)."""
    return resolve(words) if words is not None else from_environment()


def picked_all(names) -> bool:
    return set(names) >= set(registry.TARGETS)


def steps(names) -> list[str]:
    """The build steps the targets `names` need, with every step they read, in build order."""
    return closure({registry.step_of(name) for name in names} - {None})


def closure(step_names) -> list[str]:
    """`step_names` and every step they read, in build order."""
    by_name = {step.name: step for step in registry.steps()}
    wanted = set(step_names)
    stack = list(wanted)
    while stack:
        for parent in by_name[stack.pop()].after:
            if parent not in wanted:
                wanted.add(parent)
                stack.append(parent)
    return [name for name in by_name if name in wanted]


def servers_of(names) -> list[str]:
    """The servers to start for the targets `names`, in start order: their model servers, and the page's
    server when a page row is among them."""
    wanted = {registry.TARGETS[name].server for name in names} - {None}
    if any(registry.TARGETS[name].page is not None for name in names):
        wanted |= {name for name, row in servers.SERVERS.items() if row.optional}
    return [name for name in servers.SERVERS if name in wanted]


def needs_of_target(name: str) -> list[str]:
    """What target `name` needs installed: the main environment, its own needs, its build steps', its
    server's (its environment too) and its page's. The page's step reads every page row's file, but leaves a
    row out when its step cannot run here: a page row needs the page step itself, not the other rows' tools."""
    target = registry.TARGETS[name]
    by_name = {step.name: step for step in registry.steps()}
    found = [*environments.ALWAYS, target.env, *target.needs]
    chain = closure([target.step.name] if target.step is not None else [])
    if registry.step_of(name) != (target.step.name if target.step is not None else None):
        chain.append(registry.step_of(name))  # the page, for a browser row
    for step in chain:
        found += by_name[step].needs
    if target.server is not None:
        row = servers.SERVERS[target.server]
        found += [row.env, *row.needs]
    if target.page is not None:
        found += registry.PAGE_NEEDS
    return list(dict.fromkeys(found))


def needs(names) -> list[str]:
    """Everything the targets `names` need (environments, then system programs), in table order; the page's
    server runs in the main environment."""
    wanted = {need for name in names for need in needs_of_target(name)}
    order = [*environments.ENVIRONMENTS, *environments.SYSTEM]
    unknown = wanted - set(order)
    if unknown:
        raise SelectionError(f"unknown needs {sorted(unknown)}: name an environment or a system program of "
                             "core/environments.py")
    return [need for need in order if need in wanted]


def table() -> str:
    """`make targets`: every target with its kind and needs, then every group with its targets."""
    lines = [f"{'target':31} {'kind':11} {'framework':11} needs"]
    for name, target in registry.TARGETS.items():
        extra = [need for need in needs_of_target(name) if need not in environments.ALWAYS]
        lines.append(f"{name:31} {target.kind:11} {target.framework:11} {' '.join(extra) or '-'}")
    lines += ["", "groups (TARGETS= takes target names and these):"]
    lines += [f"  {group:14} {' '.join(names)}" for group, names in sorted(groups().items())]
    lines += ["", "environments and system programs:"]
    lines += [f"  {name:16} {environments.ENVIRONMENTS[name].folder:20} {environments.ENVIRONMENTS[name].purpose}"
              for name in environments.ENVIRONMENTS]
    lines += [f"  {name:16} {'(system)':20} {purpose}" for name, (purpose, _) in environments.SYSTEM.items()]
    return "\n".join(lines)


def markdown() -> str:
    """The README's table of targets (core/readme.py writes it): one row per target, with what each needs installed."""
    lines = [f"{len(registry.TARGETS)} targets:", "",
             "| target | kind | weights from | precision | needs (beyond `.venv`) |", "| --- | --- | --- | --- | --- |"]
    for name, target in registry.TARGETS.items():
        extra = [need for need in needs_of_target(name) if need not in environments.ALWAYS]
        lines.append(f"| `{name}` | {target.kind} | {target.framework} | {target.precision} | "
                     f"{', '.join(extra) or '-'} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    import argparse


    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=None, help="targets or groups (default: $DIGITS_TARGETS, or all)")
    parser.add_argument("--needs", action="store_true", help="print only what the pick needs, one per line")
    args = parser.parse_args(argv)
    try:
        names = pick(args.targets)
    except SelectionError as error:
        raise SystemExit(f"error: {error}") from None
    print("\n".join(needs(names)) if args.needs else table())


if __name__ == "__main__":
    main()
