"""The ``worldenv`` command. Each subcommand parses its own flags (``--help``
on each) and imports what it needs only when it runs, so ``--help`` is instant."""

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="worldenv", description="Dream environments: MuJoCo ground truth, data, world models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch threads of this process; default 1 for the commands that dream or score (eval, "
                        "compare, record, bench, contexts, demo): their small batches gain little from more, and on a "
                        "busy 2-core machine more ran them 10-20x slower; train and distill take every core (their "
                        "share under torchrun), recipes the threads its table names")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_collect, _add_inspect, _add_train, _add_distill, _add_contexts, _add_eval, _add_compare, _add_record, _add_bench, _add_recipes, _add_campaign, _add_demo):
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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
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


# ---- collect -----------------------------------------------------------------
def _add_collect(commands) -> None:
    p = commands.add_parser(
        "collect",
        help="run a MuJoCo scene under exploration policies and store the episodes",
        description="Collect episodes in worker processes. Rerunning the same command finishes an interrupted "
        "collection; shards already written are kept.",
    )
    p.add_argument("--config", type=Path, help="YAML preset whose 'collect' section gives the defaults")
    p.add_argument("--scene", help="reacher, cartpole, panorama or duo")
    p.add_argument("--episodes", type=int, help="number of episodes")
    p.add_argument("--steps", dest="steps_per_episode", type=int, help="maximum steps per episode (default 200)")
    p.add_argument("--policy", help="exploration policy: mix (default), uniform, jitter, smooth, gentle, goal, roam (the expert steered into the ends of its range; cartpole), push (held pushes, often at a bound), or trained (an agent's policy.zip, --agent)")
    p.add_argument("--agent", type=Path, help="with --policy trained: the SB3 policy.zip that acts (agents/ppo_dream.py's)")
    p.add_argument("--agent-checkpoint", type=Path,
                   help="with --policy trained: the bundle whose state probe the agent observes through (default: the scene's shipped one)")
    p.add_argument("--agent-stack", type=int, help="with --policy trained: probe readings stacked (default 2)")
    p.add_argument("--agent-deterministic", action="store_true",
                   help="with --policy trained: the policy's mean action (default: sampled, as in PPO's training episodes)")
    p.add_argument("--seed", type=int, help="base seed; episode i uses a seed derived from (seed, i)")
    p.add_argument("--shard-size", type=int, help="episodes per shard file (default 20)")
    p.add_argument("--width", type=int, help="frame width in pixels (default 64)")
    p.add_argument("--height", type=int, help="frame height in pixels (default 64)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes, each with its own renderer; 1 collects in this process (default 2)")
    p.add_argument("--out", type=Path, required=True, help="dataset directory (created; its parent must be writable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_collect)


def _collect(args) -> int:
    from dataclasses import replace

    from worldenv import config
    from worldenv.config import ConfigError
    from worldenv.data.collect import CollectConfig, CollectionInterrupted, collect
    from worldenv.data.trained_policy import TrainedPolicy
    from worldenv.checkpoint import shipped_checkpoint
    from worldenv.io import sha256_file

    flags = ("scene", "episodes", "steps_per_episode", "policy", "seed", "shard_size", "width", "height")
    overrides = {key: getattr(args, key) for key in flags if getattr(args, key) is not None}
    if args.agent is None and (args.agent_checkpoint or args.agent_stack or args.agent_deterministic):
        raise ConfigError("--agent-checkpoint, --agent-stack and --agent-deterministic describe an agent: expected --agent PATH")
    if args.agent is not None:  # the agent's settings need the scene: they are added to the built config
        if overrides.pop("policy", TrainedPolicy.name) != TrainedPolicy.name:
            raise ConfigError(f"--agent: acts under --policy trained, not {args.policy!r}")
    if args.config:
        cfg = config.load(args.config, "collect", CollectConfig, overrides)
    else:
        cfg = config.build(CollectConfig, overrides, "collect")
    if args.agent is not None:
        cfg = replace(cfg, policy=TrainedPolicy.name, exploration_mix=None, trained_policy={
            "path": str(args.agent), "checkpoint": str(args.agent_checkpoint or shipped_checkpoint(cfg.scene)),
            "stack": args.agent_stack or 2, "deterministic": args.agent_deterministic, "sha256": sha256_file(args.agent)})
        cfg.validate()
    try:
        manifest = collect(cfg, args.out, workers=args.workers, progress=not args.no_progress)
    except CollectionInterrupted as stopped:
        print(f"worldenv collect: {stopped}", file=sys.stderr)
        return 130  # the shell's code for a Ctrl-C
    print(f"{args.out}: {manifest.episodes} {cfg.scene} episodes, {manifest.steps} steps")
    return 0


# ---- inspect -----------------------------------------------------------------
def _add_inspect(commands) -> None:
    p = commands.add_parser(
        "inspect",
        help="print a dataset's counts and verify every checksum",
        description="Exit status 1 if any file is missing, truncated or corrupted (each is named).",
    )
    p.add_argument("dataset", type=Path, help="dataset directory made by `worldenv collect`")
    p.set_defaults(run=_inspect)


def _inspect(args) -> int:
    from worldenv.data.summary import summarize

    report, problems = summarize(args.dataset)
    print(report)
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0


# ---- train -------------------------------------------------------------------
def _add_train(commands) -> None:
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
def _add_distill(commands) -> None:
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


# ---- contexts ----------------------------------------------------------------
def _add_contexts(commands) -> None:
    p = commands.add_parser(
        "contexts",
        help="store a bank of real MuJoCo start contexts in a checkpoint (what the dream env resets from)",
        description="Run the checkpoint's scene for COUNT short episodes under its exploration mix and store "
        "their frames and actions in the bundle as component 'contexts'.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="bundle directory")
    p.add_argument("--count", type=int, default=128, help="number of start contexts (default 128)")
    p.add_argument("--length", type=int, default=4, help="frames per context (default 4)")
    p.add_argument("--seed", type=int, help="base episode seed (default: disjoint from collection and eval)")
    p.set_defaults(run=_contexts, default_threads=1)


def _contexts(args) -> int:
    from worldenv.eval.card import render_card
    from worldenv.checkpoint import check_writable, load_bundle, update_bundle
    from worldenv.contexts import COMPONENT, DEFAULT_SEED, record_start_contexts
    from worldenv.nn.tokenizer import TokenizerConfig

    bundle = load_bundle(args.checkpoint)
    check_writable(args.checkpoint)  # before the episodes are run, not after
    size = bundle.model_config("tokenizer", TokenizerConfig).image_size
    seed = DEFAULT_SEED if args.seed is None else args.seed
    bank, config = record_start_contexts(bundle.scene, args.count, args.length, size, seed)
    command = shlex.join(["worldenv", *args.argv])
    metadata = {**bundle.metadata, "contexts": {**config, "command": command}}
    update_bundle(args.checkpoint, components={COMPONENT: (bank, config)}, metadata=metadata, card=render_card(metadata))
    print(f"{args.checkpoint}: {args.count} start contexts of {args.length} frames")
    return 0


# ---- how a dream is served: one group of flags for every command that dreams ----
def add_dream_arguments(p: argparse.ArgumentParser, defaults: dict | None = None, serving: bool = True,
                        several: tuple[str, ...] = (), steps_flags: tuple[str, ...] = ("--sampling-steps",)) -> None:
    """The flags of a ``DreamConfig`` (``dream_config`` builds it): the serving choice (unless
    ``serving`` is False: the command names its models otherwise), sampler, device and dtype.
    ``defaults``: the command's own, by field (the serving fields default to the bundle's
    choice); ``several``: fields that take one or more values, one dream each."""
    from typing import get_args

    from worldenv.dream_config import Commit, Dtype, Sampler  # without torch: --help stays instant

    defaults = {"sampler": "euler", "device": "cpu", "dtype": "auto", **(defaults or {})}
    group = p.add_argument_group("how the dream is served")
    names = []

    def add(name: str, *flags: str, **kwargs) -> None:
        default = defaults.get(name)
        shown = " ".join(map(str, default)) if name in several and default is not None else default
        kwargs["help"] += f" (default {shown})" if default is not None else " (default: the bundle's serving choice)"
        group.add_argument(*flags, dest=name, default=default, nargs="+" if name in several else None, **kwargs)
        names.append(name)

    if serving:
        add("model", "--model", help="bundle component that dreams")
        add("sampling_steps", *steps_flags, type=int, help="sampling steps per frame")
        add("action_guidance", "--action-guidance", type=float,
            help="scale of the action's effect in the dream (1: the model as trained)")
        add("commit", "--commit", choices=get_args(Commit),
            help="what each dreamed frame leaves in the cache, the sampled latent or the re-encoded frame")
    add("sampler", "--sampler", choices=get_args(Sampler), help="how each frame's sampling steps integrate")
    add("device", "--device", help="where the dream runs: cpu or cuda[:N]")
    add("dtype", "--dtype", choices=get_args(Dtype),
        help="the networks' dtype (auto: float32 on the CPU, bfloat16 on cuda; bfloat16 is about 2x faster on a CPU with AMX)")
    p.set_defaults(dream_fields=tuple(names))


def dream_config(args, **overrides):
    """The ``DreamConfig`` that ``args`` asks for (the flags of ``add_dream_arguments``), with
    ``overrides`` (a field of ``several`` takes one of its values here)."""
    from worldenv.dream_config import DreamConfig

    return DreamConfig(**{**{name: getattr(args, name) for name in args.dream_fields}, **overrides})


# ---- eval --------------------------------------------------------------------
def _add_eval(commands) -> None:
    p = commands.add_parser(
        "eval",
        help="score a checkpoint's dreams against MuJoCo: per horizon beside the copy-last-frame baseline (horizons), "
        "or panorama revisits (memory)",
        description="Same start frames and actions in MuJoCo and in the model (open loop), for uniform, smooth "
        "and goal-directed actions: PSNR, SSIM, foreground IoU, state-probe error, reward and termination error. "
        "--suite memory: a panorama dream's revisits of a view after turning away. The report is written (--json) and "
        "shown before --update-card touches the bundle.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="bundle directory (tokenizer, teacher, probe)")
    p.add_argument("--suite", choices=["horizons", "memory"], default="horizons",
                   help="horizons (default): open-loop scores per horizon; memory: panorama revisits after T frames "
                   "away, for the window alone, with sinks, and with long-term memory")
    p.add_argument("--away", type=int, nargs="+", default=[8, 32, 64, 128, 256],
                   help="frames the camera is turned away (memory suite; default 8 32 64 128 256)")
    p.add_argument("--episodes", type=int, default=8, help="episodes per action policy (default 8)")
    p.add_argument("--horizon", type=int, default=200, help="frames dreamed after the context (default 200)")
    p.add_argument("--context", type=int, default=4, help="real frames that prime the dream (default 4)")
    # Not the bundle's choice: one bundle's components scored by the same command stay comparable.
    add_dream_arguments(p, {"model": "teacher", "sampling_steps": 8, "action_guidance": 1.0, "commit": "latent"},
                        steps_flags=("--sampling-steps", "--steps"))
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--plot", type=Path, help="write the horizon curves here (PNG)")
    p.add_argument("--update-card", action="store_true",
                   help="record the results in the bundle: metadata['evaluation'] and the model card")
    p.set_defaults(run=_eval, default_threads=1)


def _eval(args) -> int:
    from worldenv.eval.evaluate import EvalConfig, evaluate, summary_table
    from worldenv.io import atomic_write_json
    from worldenv.eval.plots import plot_horizon_curves

    if args.suite == "memory":
        return _eval_memory(args)

    config = EvalConfig(episodes=args.episodes, horizon=args.horizon, context=args.context, dream=dream_config(args))
    report = evaluate(args.checkpoint, config)
    if args.json:
        atomic_write_json(args.json, report)
    if args.plot:
        plot_horizon_curves(report, args.plot)
    print(summary_table(report), flush=True)  # shown before the bundle is touched: a failed update loses nothing
    if args.update_card:
        _record_in_bundle(args.checkpoint, "evaluation", {"command": shlex.join(["worldenv", *args.argv]), "report": report},
                          args.json)
    return 0


def _eval_memory(args) -> int:
    from worldenv.io import atomic_write_json
    from worldenv.eval.plots import plot_revisits
    from worldenv.eval.revisit import RevisitConfig, revisit_suite, revisit_table

    config = RevisitConfig(away=tuple(args.away), episodes=args.episodes, dream=dream_config(args))
    report = revisit_suite(args.checkpoint, config)
    report["command"] = shlex.join(["worldenv", *args.argv])
    if args.json:
        atomic_write_json(args.json, report)
    if args.plot:
        plot_revisits(report, args.plot)
    table = revisit_table(report)
    print(table, flush=True)
    if args.update_card:
        _record_in_bundle(args.checkpoint, "memory_evaluation", {"command": report["command"], "table": table}, args.json)
    return 0


def _record_in_bundle(checkpoint: Path, key: str, evaluation: dict, report: Path | None) -> None:
    """Store an evaluation (with today's date) in the bundle's metadata and re-render its card.
    Called after the report is written and shown; a failure says where the report is."""
    from datetime import date

    from worldenv.eval.card import render_card
    from worldenv.checkpoint import CheckpointError, load_bundle, update_bundle

    kept = f"the report is in {report}" if report else "the table above is the report (--json keeps it whole)"
    try:
        metadata = {**load_bundle(checkpoint).metadata, key: {**evaluation, "date": date.today().isoformat()}}
        update_bundle(checkpoint, metadata=metadata, card=render_card(metadata))
    except (CheckpointError, OSError) as error:
        raise CheckpointError(f"--update-card: could not record the evaluation in {checkpoint} ({error}); {kept}") from error


# ---- compare -----------------------------------------------------------------
def _add_compare(commands) -> None:
    p = commands.add_parser(
        "compare",
        help="quality against speed: several models of a bundle on the same MuJoCo episodes, each timed as a dream env",
        description="Score each component@steps on the same held-out episodes and actions (PSNR, SSIM, state probe "
        "per horizon, beside copy-last-frame) and time it as a dream env on this machine; a table, JSON and a PNG frontier.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="bundle directory (with probe and start contexts)")
    p.add_argument("--models", nargs="+", required=True,
                   help="component@steps, e.g. teacher@8 student_consistency@1; component@stepsgG adds action guidance G "
                   "(student_consistency@1g1.8), a +frame suffix commits the re-encoded frame (student_consistency@1+frame)")
    p.add_argument("--episodes", type=int, default=4, help="episodes per action policy (default 4)")
    p.add_argument("--horizon", type=int, default=200, help="frames dreamed after the context (default 200)")
    p.add_argument("--speed-envs", type=int, nargs="+", default=[1, 16], help="batch sizes timed (default 1 16)")
    add_dream_arguments(p, serving=False)  # each of --models is a serving choice; these hold for every one
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--plot", type=Path, help="write the quality-speed frontier here (PNG)")
    p.add_argument("--serve", help="one of --models (component@steps[gG][+frame]): record it in the bundle as what its dreams use "
                   "by default, with this comparison as the evidence")
    p.set_defaults(run=_compare, default_threads=1)


def parse_model(text: str, flag: str):
    """A ``Serving`` from ``component@steps[gG][+frame]``; a bad one names ``flag``."""
    from worldenv.serving import Serving

    try:
        return Serving.parse(text)
    except ValueError as error:
        raise ValueError(f"{flag}: {error}") from None


def _compare(args) -> int:
    from worldenv.eval.compare import compare, comparison_table, plot_frontier
    from worldenv.eval.evaluate import EvalConfig
    from worldenv.io import atomic_write_json

    entries = [parse_model(text, "--models") for text in args.models]
    if args.serve is not None and parse_model(args.serve, "--serve") not in entries:
        raise ValueError(f"--serve: expected one of --models {args.models}, got {args.serve!r}")
    report = compare(args.checkpoint, entries, EvalConfig(episodes=args.episodes, horizon=args.horizon,
                                                          dream=dream_config(args)), speed_envs=tuple(args.speed_envs))
    report["command"] = shlex.join(["worldenv", *args.argv])
    if args.json:
        atomic_write_json(args.json, report)
    if args.plot:
        plot_frontier(report, args.plot)
    table = comparison_table(report)
    if args.serve is not None:
        from worldenv.eval.card import render_card
        from worldenv.checkpoint import load_bundle, update_bundle

        serving = {**parse_model(args.serve, "--serve").record(), "command": report["command"], "comparison": table}
        metadata = {**load_bundle(args.checkpoint).metadata, "serving": serving}
        update_bundle(args.checkpoint, metadata=metadata, card=render_card(metadata))
    print(table)
    return 0


# ---- record ------------------------------------------------------------------
def _add_record(commands) -> None:
    p = commands.add_parser(
        "record",
        help="write a video of the dream beside MuJoCo (dream | MuJoCo | difference) for the same start and actions",
        description="Prime the dream with real MuJoCo frames, then give both worlds the same actions and write "
        "the frames side by side (mp4 or gif, by OUT's suffix).",
    )
    p.add_argument("out", type=Path, help="OUT.mp4 or OUT.gif")
    p.add_argument("--checkpoint", type=Path, help="bundle directory (default: the shipped one of --scene)")
    p.add_argument("--scene", help="scene of the shipped checkpoint to use (default reacher)")
    p.add_argument("--policy", default="random",
                   help="random (uniform), smooth, goal, or PATH of a stable-baselines3 PPO .zip (default random)")
    p.add_argument("--steps", type=int, default=200, help="dreamed frames after the context (default 200)")
    p.add_argument("--context", type=int, default=4, help="real frames that prime the dream (default 4)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    add_dream_arguments(p)
    p.set_defaults(run=_record, default_threads=1)


def _record(args) -> int:
    from worldenv.eval.record import paired_rollout, report_lines, write_side_by_side

    if args.out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"OUT: expected a .mp4 or .gif path, got {args.out}")
    rollout = paired_rollout(args.checkpoint, args.policy, args.steps, seed=args.seed, context=args.context,
                             scene=args.scene, dream_config=dream_config(args))
    write_side_by_side(rollout, args.out)
    print(f"{args.out}: {len(rollout.dream)} frames (dream | MuJoCo | difference x3)")
    for line in report_lines(rollout):
        print(line)
    return 0


# ---- bench -------------------------------------------------------------------
def _add_bench(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="measure speeds: scenes (MuJoCo step+render per scene), sampler (windows/s), dream (per batch size), "
        "long (5000-step dreams)",
        description="Print a markdown table of speeds measured in this run: scenes, MuJoCo step+render per scene; "
        "sampler, training windows per second; dream, the dream env per batch size beside MuJoCo; long, long dreams "
        "(ms/step, memory, frame range).",
    )
    p.add_argument("what", choices=["scenes", "sampler", "dream", "long"], help="what to measure")
    p.add_argument("--steps", type=int, default=2000, help="steps per scene measurement (scenes)")
    p.add_argument("--dataset", type=Path, help="dataset directory (sampler)")
    p.add_argument("--length", type=int, default=16, help="window length in frames (sampler)")
    p.add_argument("--batch", type=int, default=32, help="windows per batch (sampler)")
    p.add_argument("--checkpoint", type=Path, help="bundle directory (dream; default the shipped reacher)")
    # dream: a row per sampling steps, dtype and batch size; long: a rollout per bundle and dtype, each bundle
    # dreaming its own serving choice.
    add_dream_arguments(p, {"model": "teacher", "sampling_steps": [4, 1], "action_guidance": 1.0, "commit": "latent",
                            "dtype": ["auto"]}, several=("sampling_steps", "dtype"))
    p.add_argument("--envs", type=int, nargs="+", default=[1, 16, 64, 256], help="batch sizes (dream)")
    p.add_argument("--seconds", type=float, default=6.0, help="measuring time per batch size (dream)")
    p.add_argument("--rounds", type=int, default=1, help="measure MuJoCo and every dream this many times in turn; "
                   "medians, and the range of each ratio to MuJoCo (dream; default 1)")
    p.add_argument("--bundles", type=Path, nargs="+", help="bundles dreamed for --steps frames each, with the model "
                   "they serve by default (long; default the shipped reacher and panorama)")
    p.add_argument("--json", type=Path, help="write the report here (dream, long)")
    p.set_defaults(run=_bench, default_threads=1)


def _bench(args) -> int:
    from worldenv.eval import bench
    from worldenv.io import atomic_write_json

    if args.what == "scenes":
        print(bench.scenes_table(steps=args.steps))
    elif args.what == "long":
        _bench_long(args)
    elif args.what == "dream":
        configs = [dream_config(args, sampling_steps=steps, dtype=dtype) for steps in args.sampling_steps for dtype in args.dtype]
        report = bench.dream_report(configs, args.checkpoint, batches=args.envs, seconds=args.seconds,
                                    scene_steps=args.steps, rounds=args.rounds)
        if args.json:
            atomic_write_json(args.json, {"command": shlex.join(["worldenv", *args.argv]), **report})
        print(bench.dream_table(report))
    else:
        if args.dataset is None:
            raise ValueError("bench sampler needs --dataset DIR")
        print(bench.sampler_table(args.dataset, length=args.length, batch=args.batch))
    return 0


def _bench_long(args) -> None:
    from worldenv.eval import bench
    from worldenv.checkpoint import shipped_checkpoint
    from worldenv.io import atomic_write_json
    from worldenv.eval.long_rollout import LongRolloutConfig, long_rollout, long_rollout_table

    bundles = args.bundles or [shipped_checkpoint("reacher"), shipped_checkpoint("panorama")]
    reports = []
    marks = tuple(m for m in (50, 500, 5000) if m < args.steps) + (args.steps,)
    for bundle in bundles:
        for dtype in args.dtype:
            served = dream_config(args, model=None, sampling_steps=None, action_guidance=None, commit=None, dtype=dtype)
            reports.append(long_rollout(bundle, LongRolloutConfig(steps=args.steps, marks=marks, dream=served)))
    if args.json:
        atomic_write_json(args.json, {"machine": bench.machine(), "command": shlex.join(["worldenv", *args.argv]),
                                      "reports": reports})
    print(f"machine: {bench.machine()}, {reports[0]['threads']} threads\n")
    print(long_rollout_table(reports))


# ---- recipes -----------------------------------------------------------------
def _add_recipes(commands) -> None:
    from worldenv.recipes import run

    p = commands.add_parser(
        "recipes",
        help="train teacher variants for one CPU budget and score them side by side (the recipe table)",
        description=run.__doc__,
    )
    run.add_arguments(p)
    p.set_defaults(run=run.run)


# ---- campaign ----------------------------------------------------------------
def _add_campaign(commands) -> None:
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
    from worldenv.eval.card import render_card
    from worldenv.checkpoint import load_bundle, update_bundle

    bundle = load_bundle(args.checkpoint)
    update_bundle(args.checkpoint, metadata={campaign.KEY: campaign.stages(bundle.metadata)})
    if args.scores:
        campaign.attach_scores(args.checkpoint, json.loads(args.scores.read_text()),
                               shlex.join(["worldenv", *args.argv]))
    metadata = load_bundle(args.checkpoint).metadata
    update_bundle(args.checkpoint, card=render_card(metadata))
    entries = campaign.stages(metadata)
    print(f"{args.checkpoint}: {campaign.total_cpu_hours(entries):.2f} CPU-hours in {len(entries)} stages\n")
    print(campaign.ledger_table(entries))
    if args.plot:
        campaign.plot_curve(entries, args.plot, f"{metadata.get('scene', '?')}: quality against CPU-hours")
    return 0


# ---- demo --------------------------------------------------------------------
def _add_demo(commands) -> None:
    p = commands.add_parser(
        "demo",
        help="dream beside MuJoCo with the shipped checkpoints (videos, speed, PSNR), and every scene's ground truth",
        description="What `make demo` runs: for each shipped checkpoint, one real start and the same actions in the dream "
        "and in MuJoCo (a dream | MuJoCo | difference video, both worlds' frames per second, PSNR per horizon); then a "
        "small verified dataset, a video and a contact sheet of every scene's ground truth, all under --out.",
    )
    p.add_argument("--out", type=Path, default=Path("demo"), help="output directory (default demo/)")
    p.add_argument("--steps", type=int, default=200, help="dreamed frames per shipped checkpoint (default 200)")
    p.add_argument("--policy", default="goal", help="random, smooth or goal (default goal)")
    p.add_argument("--episodes", type=int, default=4, help="ground-truth episodes per scene (default 4)")
    p.add_argument("--episode-steps", type=int, default=100, help="steps per ground-truth episode (default 100)")
    p.add_argument("--workers", type=int, default=2, help="worker processes for the ground truth (default 2)")
    p.set_defaults(run=_demo, default_threads=1)


def _demo(args) -> int:
    from worldenv.eval.demo import run_demo

    for line in run_demo(args.out, steps=args.steps, policy=args.policy, gallery_episodes=args.episodes,
                         gallery_steps=args.episode_steps, workers=args.workers):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
