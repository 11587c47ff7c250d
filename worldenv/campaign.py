"""A bundle's training campaign: every stage that trained one of its components, with
its command and CPU-hours, in the order they ran, so a bundle fine-tuned from another
(``init_from``, a recipe variant) carries the compute spent to reach it.

Stages are recorded in ``metadata["campaign"]`` by each training command as it exports.
A bundle trained before the ledger existed gets its stages from its ``*_training``
records, with CPU-hours estimated as wall time x threads (``measured: false``).
"""

import datetime

from worldenv.checkpoint import CheckpointError, load_bundle, update_bundle

KEY = "campaign"
PARTS = ("tokenizer_training", "teacher_training", "probe_training")  # then students, by name


def _parts(metadata: dict) -> list[str]:
    students = sorted(key for key in metadata if key.startswith("student_") and key.endswith("_training"))
    return [part for part in (*PARTS, *students) if part in metadata]


def stage_of(part: str, info: dict) -> dict:
    """One ledger entry from a component's ``*_training`` record."""
    cpu = info.get("train_cpu_seconds")
    if cpu is None:  # before CPU time was recorded: wall time on all the run's threads
        wall = info.get("train_seconds")
        cpu = None if wall is None else wall * info.get("threads", 1) * info.get("processes", 1)
    return {
        "component": part.removesuffix("_training"),
        "command": info.get("command", "?"),
        "steps": info.get("steps"),
        "cpu_hours": None if cpu is None else cpu / 3600.0,
        "measured": info.get("train_cpu_seconds") is not None,
        "hardware": info.get("hardware", "?"),
        **({"date": info["date"]} if "date" in info else {}),
    }


def stages(metadata: dict) -> list[dict]:
    """The bundle's recorded stages, or, without a ledger, one per ``*_training`` record."""
    if KEY in metadata:
        return list(metadata[KEY])
    return [stage_of(part, metadata[part]) for part in _parts(metadata)]


def total_cpu_hours(entries: list[dict]) -> float:
    return round(sum(entry["cpu_hours"] or 0.0 for entry in entries), 3)


def stages_before(bundle_path) -> list[dict]:
    """The ledger of the bundle a training command is about to write into (empty if there
    is none yet): read before the command replaces a component's record."""
    try:
        return stages(load_bundle(bundle_path).metadata)
    except CheckpointError:
        return []


def record_stage(bundle_path, part: str, earlier: list[dict]) -> dict:
    """Write the ledger: ``earlier`` (``stages_before``), then the stage that just wrote
    ``part`` (e.g. ``teacher_training``); returns the new entry."""
    bundle = load_bundle(bundle_path)
    entry = {**stage_of(part, bundle.metadata[part]), "date": datetime.date.today().isoformat()}
    update_bundle(bundle_path, metadata={KEY: [*earlier, entry]})
    return entry


def ledger_table(entries: list[dict]) -> str:
    """Markdown: each stage with its CPU-hours and the running total."""
    lines = ["| # | component | command | steps | CPU-hours | cumulative |", "| ---: | --- | --- | ---: | ---: | ---: |"]
    total = 0.0
    for number, entry in enumerate(entries, 1):
        hours = entry["cpu_hours"]
        total += hours or 0.0
        spent = "not recorded" if hours is None else f"{hours:.2f}" + ("" if entry.get("measured") else " (est.)")
        lines.append(f"| {number} | {entry['component']} | `{entry['command']}` | {entry.get('steps') or '-'} | "
                     f"{spent} | {total:.2f} |")
    return "\n".join(lines)
