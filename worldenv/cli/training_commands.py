"""``worldenv train``, ``distill``, ``recipes`` and ``campaign``: making world models."""

import shlex
from pathlib import Path


# ---- train -------------------------------------------------------------------
def add_train(commands) -> None:
    from worldenv.train import build_parser

    p = commands.add_parser(
        "train",
        help="train the tokenizer, the teacher or the state probe (or a student: consistency, dmd or self-forcing, as "
        "distill does) from a YAML preset (resumable; torchrun for several processes)",
        description="Train a model into a checkpoint bundle. Data-parallel: "
        "torchrun --nproc_per_node=N -m worldenv.train TASK --config ...",
    )
    build_parser(p)
    p.set_defaults(run=_train)


def _train(args) -> int:
    from worldenv.train import run

    return run(args, ["worldenv", *args.argv])


# ---- distill -----------------------------------------------------------------
def add_distill(commands) -> None:
    p = commands.add_parser(
        "distill",
        help="distil the bundle's teacher into a few-step student: consistency, dmd or self-forcing (resumable)",
        description="Train a student from the teacher into the bundle as component student_<method>; the preset's "
        "section named like the method configures it.",
    )
    from worldenv.train import add_run_options

    p.add_argument("--method", required=True, choices=["consistency", "dmd", "self-forcing"], help="distillation method")
    add_run_options(p, "method")
    p.set_defaults(run=_distill)


def _distill(args) -> int:
    from worldenv.train import run

    args.task = args.method
    return run(args, ["worldenv", *args.argv])


# ---- recipes -----------------------------------------------------------------
def add_recipes(commands) -> None:
    from worldenv.recipes import run

    p = commands.add_parser(
        "recipes",
        help="train teacher variants for one CPU budget and score them side by side (the recipe table)",
        description=run.__doc__,
    )
    run.add_arguments(p)
    p.set_defaults(run=run.run)


# ---- campaign ----------------------------------------------------------------
def add_campaign(commands) -> None:
    p = commands.add_parser(
        "campaign",
        help="a bundle's training campaign: every stage with its CPU-hours, written into its card; the quality curve",
        description="Print the stages that trained the bundle (and the bundles it was fine-tuned from) with their "
        "commands and CPU-hours, record them in its metadata and card, optionally attach a recipe-table row's "
        "scores to its last stage, and draw quality against cumulative CPU-hours.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="bundle directory")
    p.add_argument("--scores", type=Path, help="a recipe-table row (JSON) that scored this bundle: its curve point")
    p.add_argument("--plot", type=Path, help="write the quality-against-CPU-hours curve here (PNG)")
    p.set_defaults(run=_campaign)


def _campaign(args) -> int:
    import json

    from worldenv import campaign
    from worldenv.checkpoint import load_bundle, update_bundle
    from worldenv.eval.card import render_card

    bundle = load_bundle(args.checkpoint)
    update_bundle(args.checkpoint, metadata={campaign.KEY: campaign.stages(bundle.metadata)})
    if args.scores:
        campaign.attach_scores(args.checkpoint, json.loads(args.scores.read_text()), shlex.join(["worldenv", *args.argv]))
    metadata = load_bundle(args.checkpoint).metadata
    update_bundle(args.checkpoint, card=render_card(metadata))
    entries = campaign.stages(metadata)
    print(f"{args.checkpoint}: {campaign.total_cpu_hours(entries):.2f} CPU-hours in {len(entries)} stages\n")
    print(campaign.ledger_table(entries))
    if args.plot:
        campaign.plot_curve(entries, args.plot, f"{metadata.get('scene', '?')}: quality against CPU-hours")
    return 0
