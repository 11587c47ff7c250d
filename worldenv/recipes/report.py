"""The recipe table's Markdown and PNG, from the rows its variants have so far."""

import json
import logging
from pathlib import Path

from worldenv.io import atomic_write
from worldenv.recipes.table import RecipeTable

logger = logging.getLogger(__name__)
TABLE = "table.md"
PLOT = "table.png"
GAIN_QUANTITIES = ("joint_angles", "fingertip")
GAIN_COLUMNS = ("joint_angles", "joint_angles[0]", "joint_angles[1]", "fingertip")  # entries: shoulder, elbow


def load_rows(table: RecipeTable) -> list[dict]:
    """The rows written so far: the start bundle's, then the variants' in the table's order."""
    from worldenv.recipes.score import START

    names = [START, *table.variants]
    return [json.loads(table.row_path(name).read_text()) for name in names if table.row_path(name).exists()]


def _columns(row: dict) -> dict[str, str]:
    """One row's cells by column name."""
    cells = {"variant": row["variant"]}
    training = row["training"]
    cells["steps"] = str(training["steps"])
    cells["CPU-h in all"] = f"{training['campaign_cpu_hours']:.2f}"
    cells["windows/s"] = f"{training['windows_per_second']:.1f}" if training["windows_per_second"] else "-"
    cells["one-step error (/copy)"] = f"{row['one_step']['model']:.4f} ({row['one_step']['ratio']:.2f})"
    for step, gains in sorted(row["gains"].items(), key=lambda item: int(item[0])):
        for quantity in GAIN_COLUMNS:
            if quantity in gains:
                cells[f"gain {quantity} @{step}"] = f"{gains[quantity]:.2f}"
    horizons = row["eval"]["horizons"]
    longest = max(horizons, key=int)
    for h, scores in sorted(horizons.items(), key=lambda item: int(item[0])):
        if h == longest and int(h) > 15:
            cells[f"fade h{h}"] = f"{scores['fade']:.2f}"
            continue
        cells[f"PSNR margin h{h}"] = f"{scores['psnr_margin']:+.2f}"
        for quantity in GAIN_QUANTITIES:
            if f"{quantity}_ratio" in scores:
                cells[f"{quantity} /copy h{h}"] = f"{scores[f'{quantity}_ratio']:.2f}"
    return cells


def _column_order(name: str) -> tuple:
    """Training columns first, then gains by step and quantity, then scores by horizon,
    whatever columns the first row happens to lack (a row scored before one existed)."""
    fixed = ["variant", "steps", "CPU-h in all", "windows/s", "one-step error (/copy)"]
    if name in fixed:
        return (0, fixed.index(name))
    if name.startswith("gain "):
        quantity, step = name.removeprefix("gain ").rsplit(" @", 1)
        return (1, int(step), GAIN_COLUMNS.index(quantity) if quantity in GAIN_COLUMNS else len(GAIN_COLUMNS))
    horizon = int(name.rsplit(" h", 1)[1])
    return (2, horizon, name)


def markdown(table: RecipeTable, rows: list[dict], command: str) -> str:
    per_row = [_columns(row) for row in rows]
    head = sorted(dict.fromkeys(key for cells in per_row for key in cells), key=_column_order)
    lines = [
        f"Recipe table: `{command}`. Each variant trained {table.budget_cpu_minutes:g} CPU-minutes on "
        f"{table.threads} thread(s), {'fine-tuning' if table.fine_tune else 'from fresh weights, beside'} "
        f"`{table.start}`'s teacher; teacher at {table.score.sampling_steps} Euler steps, "
        f"{table.score.episodes} held-out episodes per action policy, pushes from {table.score.gain_starts} real starts.",
        "",
        "| " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * (len(head) - 1),
    ]
    lines += ["| " + " | ".join(cells.get(key, "-") for key in head) + " |" for cells in per_row]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Per variant: push gains, PSNR margins and probe ratios, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [row["variant"] for row in rows]
    panels = [
        (
            "push gain (1 = MuJoCo)",
            {
                f"{q} @{s}": [row["gains"][s].get(q, np.nan) for row in rows]
                for s in sorted(rows[0]["gains"], key=int)
                for q in GAIN_QUANTITIES
            },
            1.0,
        ),
        (
            "PSNR over copy-last (dB)",
            {f"h{h}": [row["eval"]["horizons"].get(h, {}).get("psnr_margin", np.nan) for row in rows] for h in ("1", "5", "15")},
            0.0,
        ),
        (
            "probe error / copy-last's",
            {
                f"{q} h{h}": [row["eval"]["horizons"].get(h, {}).get(f"{q}_ratio", np.nan) for row in rows]
                for h in ("1", "5", "15")
                for q in GAIN_QUANTITIES
            },
            1.0,
        ),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (title, series, reference) in zip(axes, panels):
        width = 0.8 / len(series)
        for i, (label, values) in enumerate(series.items()):
            ax.bar(np.arange(len(names)) + i * width, values, width, label=label)
        ax.axhline(reference, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=20, ha="right")
        ax.set_title(title)
        ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)


def write_report(table: RecipeTable, table_path: str) -> str:
    rows = load_rows(table)
    if not rows:
        logger.info("no rows scored yet in %s", table.results)
        return ""
    text = markdown(table, rows, f"worldenv recipes --table {table_path}")
    results = Path(table.results)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write(results / TABLE, lambda tmp: tmp.write_text(text))
    plot(rows, results / PLOT)
    logger.info("wrote %s and %s", results / TABLE, results / PLOT)
    return text
