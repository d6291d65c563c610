"""REPORT.md's section on reading drawn and printed digits (bench/handwriting.json: `make bench TOOL=handwriting`)."""
from __future__ import annotations

from benchmarks.report.figures import missing, table

KINDS = ("drawn", "printed")


def _accuracy(entry: dict, framework: str, kind: str, label: str | None = None):
    found = entry.get("frameworks", {}).get(framework, {}).get(kind, {})
    return found.get("accuracy") if label is None else found.get("per_digit", {}).get(label)


def section_handwriting(inputs) -> str:
    text = "## Reading digits people draw and print (augmentation)\n\n"
    measured = inputs.get("handwriting")
    if not measured:
        return text + missing("handwriting")
    models, goal = measured["models"], measured.get("goal", {})
    plain, augmented = models.get("plain", {}), models.get("augmented", {})
    page = measured.get("page_framework", "tensorflow")
    cases = measured.get("cases", {})
    text += (f"A held-out set training never sees ({cases.get('drawn', '?')} digits drawn with the mouse on the page's "
             f"pad, {cases.get('printed', '?')} printed in held-out fonts; `training/heldout.py`), reduced by the "
             "page's own reduction, read by the model trained without augmentation (`--no-augment`) and with it "
             f"(the default; `training/augment.py`), from `{measured.get('command', 'make bench TOOL=handwriting')}`. "
             f"Per digit for {page} (the model the page runs):\n\n")
    labels = sorted({label for entry in (plain, augmented) for kind in KINDS
                     for label in entry.get("frameworks", {}).get(page, {}).get(kind, {}).get("per_digit", {})})
    rows = [[label, *(_accuracy(entry, page, kind, label) for kind in KINDS for entry in (plain, augmented))]
            for label in labels]
    header = ["digit", "drawn, plain", "drawn, augmented", "printed, plain", "printed, augmented"]
    text += table(header, rows) + "\n"
    overall = []
    for framework in ("torch", "tensorflow"):
        row = [framework, *(_accuracy(entry, framework, kind) for kind in KINDS for entry in (plain, augmented))]
        row += [entry.get("test_accuracy", {}).get(framework) for entry in (plain, augmented)]
        row += [entry.get("train_seconds", {}).get(framework) for entry in (plain, augmented)]
        overall.append(row)
    text += table(["framework", "drawn, plain", "drawn, augmented", "printed, plain", "printed, augmented",
                   "test split, plain", "test split, augmented", "train s, plain", "train s, augmented"], overall)
    verdicts = []
    for kind in KINDS:
        after = _accuracy(augmented, page, kind)
        if after is not None and kind in goal:
            verdicts.append(f"{kind} {after:.1%} (goal {goal[kind]:.0%}: {'met' if after >= goal[kind] else 'missed'})")
    return text + ("\nWith augmentation, " + "; ".join(verdicts) + ".\n" if verdicts else "")
