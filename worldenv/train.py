"""``worldenv train tokenizer|teacher|probe --config configs/<scene>.yaml`` and
``worldenv distill --method consistency|dmd|self-forcing --config ...``, also runnable data-parallel
as ``torchrun --nproc_per_node=N -m worldenv.train TASK ...``."""

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

TASKS = ("tokenizer", "teacher", "probe", "consistency", "dmd", "self-forcing")  # the last three: worldenv distill
PARTS = {"tokenizer": "tokenizer_training", "teacher": "teacher_training"}  # students: by component


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="worldenv train", description=__doc__)
    parser.add_argument("task", choices=TASKS, help="what to train")
    add_run_options(parser, "task")
    return parser


def add_run_options(parser: argparse.ArgumentParser, section: str) -> None:
    """The options every training command takes (``worldenv train``, ``worldenv distill``)."""
    parser.add_argument("--config", required=True, help=f"YAML preset with a section named like the {section}")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run directory where it stopped")
    parser.add_argument("--steps", type=int, help="override train.steps")
    parser.add_argument("--run", dest="run_dir", help="override the run directory")
    parser.add_argument("--bundle", help="override the checkpoint bundle directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, command: list[str]) -> int:
    """Train as ``args`` say; ``command`` is the command line, recorded in the bundle."""
    from worldenv import campaign
    from worldenv import config as configs
    from worldenv.checkpoint import hardware_description
    from worldenv.data.format import MANIFEST
    from worldenv.io import sha256_file
    from worldenv.training.loop import train

    _set_threads()
    # Which config and task classes depends on args.task: to the checker, any of them.
    Config: type[Any]
    Task: Callable[[Any], Any]
    if args.task == "tokenizer":
        from worldenv.training.tokenizer_task import TokenizerTask as Task
        from worldenv.training.tokenizer_task import TokenizerTrainingConfig as Config
    elif args.task == "teacher":
        from worldenv.training.teacher_task import TeacherTask as Task
        from worldenv.training.teacher_task import TeacherTrainingConfig as Config
    elif args.task == "consistency":
        from worldenv.distill.consistency import ConsistencyConfig as Config
        from worldenv.distill.consistency import ConsistencyDistillation as Task
    elif args.task == "dmd":
        from worldenv.distill.dmd import DMDConfig as Config
        from worldenv.distill.dmd import DMDDistillation as Task
    elif args.task == "self-forcing":
        from worldenv.distill.self_forcing import SelfForcingConfig as Config
        from worldenv.distill.self_forcing import SelfForcingDistillation as Task
    else:
        from worldenv.training.probe_task import ProbeTrainingConfig as Config
        from worldenv.training.probe_task import train_probe_into_bundle
    overrides = {key: value for key, value in (("run", args.run_dir), ("bundle", args.bundle)) if value}
    cfg = configs.load(args.config, args.task, Config, overrides)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps) if args.task == "probe" else replace(cfg, train=replace(cfg.train, steps=args.steps))
    manifest = Path(cfg.data.path) / MANIFEST
    metadata = {
        "command": shlex.join(command),
        "config": args.config,
        "dataset": {
            "path": cfg.data.path,
            "manifest_sha256": sha256_file(manifest),
            "held_out_episodes": cfg.data.held_out_episodes,
            **(
                {
                    "extra": [
                        {"path": extra, "manifest_sha256": sha256_file(Path(extra) / MANIFEST)} for extra in cfg.data.extra_paths
                    ]
                }
                if cfg.data.extra_paths
                else {}
            ),
        },
        "hardware": hardware_description(),
        "threads": torch.get_num_threads(),
    }
    earlier = campaign.stages_before(cfg.bundle)
    if args.task == "probe":
        train_probe_into_bundle(cfg, metadata, progress=not args.no_progress)
        part = "probe_training"
    else:
        cfg.train.validate()
        torch.manual_seed(cfg.train.seed)  # the model's initial weights
        task = Task(cfg)
        train(task, cfg.train, cfg.run, args.resume, metadata, progress=not args.no_progress, on_checkpoint=_draw_curve)
        part = PARTS.get(args.task) or f"{task.component}_training"
    if int(os.environ.get("RANK", "0")) == 0:
        campaign.record_stage(cfg.bundle, part, earlier)
    return 0


def _draw_curve(run_dir: Path) -> None:
    """The run's training curve beside its metrics log, redrawn at every checkpoint."""
    from worldenv.eval.plots import plot_training_curve
    from worldenv.training.loop import METRICS

    plot_training_curve(run_dir / METRICS, run_dir / "curve.png")


def _set_threads() -> None:
    """Split the cores between the processes of a run unless OMP_NUM_THREADS says otherwise."""
    if "OMP_NUM_THREADS" not in os.environ:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    return run(build_parser().parse_args(argv), ["python", "-m", "worldenv.train", *argv])


if __name__ == "__main__":
    sys.exit(main())
