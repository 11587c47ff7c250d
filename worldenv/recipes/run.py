"""``worldenv recipes --table configs/recipes/<scene>.yaml``: train the variants that
have no bundle yet, score those that have no row, and write the table and its PNG."""

import argparse
import logging
import os
import subprocess
import sys

from worldenv.recipes.table import RecipeTable, load_table, prepare_variant

logger = logging.getLogger(__name__)
STAGES = ("train", "score", "report")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", required=True, help="recipe table YAML (configs/recipes/<scene>.yaml)")
    parser.add_argument("--variants", nargs="+", help="only these variants (default: all of the table's)")
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        help="what to do (default: all; each skips what is already done)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    table = load_table(args.table)
    names = args.variants or list(table.variants)
    for name in names:
        if name not in table.variants:
            raise SystemExit(f"--variants: unknown variant {name!r}; {args.table} has {sorted(table.variants)}")
    # The same threads for every variant (its training child gets them through
    # OMP_NUM_THREADS): a row's budget and speed mean the same thing.
    import torch

    torch.set_num_threads(table.threads)
    from worldenv.recipes.score import START, score_variant

    if "score" in args.stages and not table.row_path(START).exists():
        score_variant(table, START)  # the reference every variant's row is read against
    for name in names:
        if "train" in args.stages:
            train_variant(table, name, progress=not args.no_progress)
        if "score" in args.stages and not table.row_path(name).exists():
            score_variant(table, name)
    if "report" in args.stages:
        from worldenv.recipes.report import write_report

        write_report(table, args.table)
    return 0


def train_variant(table: RecipeTable, name: str, progress: bool) -> None:
    """Train variant ``name`` into its bundle, resuming an interrupted run; nothing to do
    once its bundle's teacher was exported by this run. The training runs in a child
    process: a table takes hours, the code it trains with may be edited meanwhile, and each
    stage then runs the code as it is when the stage starts, not a mix of old and new."""
    directory = table.variant_dir(name)
    if (directory / "trained").exists():
        return
    preset = prepare_variant(table, name)
    logger.info("variant %s: training for %.0f CPU-minutes (%s)", name, table.budget_cpu_minutes, preset)
    argv = ["teacher", "--config", str(preset), "--resume", *([] if progress else ["--no-progress"])]
    done = subprocess.run(
        [sys.executable, "-m", "worldenv.train", *argv], env={**os.environ, "OMP_NUM_THREADS": str(table.threads)}
    )
    if done.returncode != 0:
        raise SystemExit(
            f"worldenv recipes: variant {name}: training stopped with exit status {done.returncode} "
            "(its error is above); the same command resumes it"
        )
    (directory / "trained").write_text("the teacher in bundle/ is this variant's\n")
