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
        lines.append(
            f"| {number} | {entry['component']} | `{entry['command']}` | {entry.get('steps') or '-'} | {spent} | {total:.2f} |"
        )
    return "\n".join(lines)


CURVE_METRICS = {  # name -> (label, where in a recipe row's scores, the target)
    "gain_joint_angles_3": ("push gain, joint angles, step 3", ("gains", "3", "joint_angles"), 1.0),
    # Joint angles, not the fingertip, at step 10: after 10 steps of a full push MuJoCo's arm
    # has turned half a turn and its fingertip is back near where it started.
    "gain_joint_angles_10": ("push gain, joint angles, step 10", ("gains", "10", "joint_angles"), 1.0),
    "psnr_margin_5": ("PSNR over copy-last at h5 (dB)", ("eval", "horizons", "5", "psnr_margin"), 4.0),
    "joint_angles_ratio_15": ("joint-angle error / copy-last's at h15", ("eval", "horizons", "15", "joint_angles_ratio"), 0.5),
}


def curve_point(row: dict) -> dict:
    """The campaign curve's values of one scored bundle (a recipe table's row)."""
    point: dict[str, float] = {}
    for name, (_, where, _) in CURVE_METRICS.items():
        value = row
        for key in where:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        if isinstance(value, float):
            point[name] = value
    return point


def attach_scores(bundle_path, row: dict, command: str) -> None:
    """Record a scored bundle's curve point on its ledger's last stage (done when a
    bundle is shipped, with the recipe-table row that chose it)."""
    entries = stages(load_bundle(bundle_path).metadata)
    entries[-1] = {**entries[-1], "scores": {**curve_point(row), "command": command}}
    update_bundle(bundle_path, metadata={KEY: entries})


def curve_series(entries: list[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """Per metric: the cumulative CPU-hours of each stage that was scored on it, and its value."""
    series: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in CURVE_METRICS}
    total = 0.0
    for entry in entries:
        total += entry["cpu_hours"] or 0.0
        for name, value in entry.get("scores", {}).items():
            if name in series:
                series[name][0].append(total)
                series[name][1].append(value)
    return series


def plot_curve(entries: list[dict], path, title: str) -> None:
    """Quality against cumulative CPU-hours: one point per scored stage, a panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldenv.io import atomic_write

    series = curve_series(entries)
    figure, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4 * len(CURVE_METRICS), 3.5))
    for ax, (name, (label, _, target)) in zip(axes, CURVE_METRICS.items()):
        ax.plot(*series[name], "o-")
        ax.axhline(target, color="green", linewidth=0.8, linestyle="--", label="target")
        ax.set_xlabel("cumulative CPU-hours")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
