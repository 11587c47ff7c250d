"""The ``worldenv`` command. Each subcommand parses its own flags (``--help``
on each) and imports what it needs only when it runs, so ``--help`` is instant."""

import argparse
import logging
import os
import sys

from worldenv.cli.data_commands import add_collect, add_contexts, add_init, add_inspect
from worldenv.cli.eval_commands import add_bench, add_compare, add_demo, add_eval, add_record
from worldenv.cli.play_commands import add_play
from worldenv.cli.training_commands import add_campaign, add_distill, add_recipes, add_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worldenv", description="Dream environments: MuJoCo ground truth, data, world models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads of this process; default 1 for the commands that dream or score (eval, "
        "compare, record, bench, contexts, demo, play): their small batches gain little from more, and on a "
        "busy 2-core machine more ran them 10-20x slower; train and distill take every core (their "
        "share under torchrun), recipes the threads its table names",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_init,
        add_collect,
        add_inspect,
        add_train,
        add_distill,
        add_contexts,
        add_eval,
        add_compare,
        add_record,
        add_bench,
        add_recipes,
        add_campaign,
        add_demo,
        add_play,
    ):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.argv = argv
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads: expected a positive number of threads, got {args.threads}")
    _set_threads(args.threads or getattr(args, "default_threads", None), given=args.threads is not None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    from worldenv.checkpoint import CheckpointError
    from worldenv.config import ConfigError
    from worldenv.data.format import DatasetError

    try:
        return args.run(args)
    except (ConfigError, DatasetError, CheckpointError, ValueError) as error:
        parser.exit(2, f"worldenv {args.command}: error: {error}\n")


def _set_threads(threads: int | None, given: bool) -> None:
    """Set this process's torch threads (and, when the user chose them, OMP_NUM_THREADS,
    which the training entry point reads); None leaves torch's default."""
    if threads is None:
        return
    if given:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
