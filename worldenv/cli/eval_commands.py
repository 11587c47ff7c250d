"""``worldenv eval``, ``compare``, ``record``, ``bench`` and ``demo``: measuring and showing dreams."""

import shlex
from pathlib import Path

from worldenv.cli.dream_args import add_dream_arguments, dream_config


# ---- eval --------------------------------------------------------------------
def add_eval(commands) -> None:
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
    p.add_argument(
        "--suite",
        choices=["horizons", "memory"],
        default="horizons",
        help="horizons (default): open-loop scores per horizon; memory: panorama revisits after T frames "
        "away, for the window alone, with sinks, and with long-term memory",
    )
    p.add_argument(
        "--away",
        type=int,
        nargs="+",
        default=[8, 32, 64, 128, 256],
        help="frames the camera is turned away (memory suite; default 8 32 64 128 256)",
    )
    p.add_argument("--episodes", type=int, default=8, help="episodes per action policy (default 8)")
    p.add_argument("--horizon", type=int, default=200, help="frames dreamed after the context (default 200)")
    p.add_argument("--context", type=int, default=4, help="real frames that prime the dream (default 4)")
    # Not the bundle's choice: one bundle's components scored by the same command stay comparable.
    add_dream_arguments(
        p,
        {"model": "teacher", "sampling_steps": 8, "action_guidance": 1.0, "commit": "latent"},
        steps_flags=("--sampling-steps", "--steps"),
    )
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--plot", type=Path, help="write the horizon curves here (PNG)")
    p.add_argument(
        "--update-card", action="store_true", help="record the results in the bundle: metadata['evaluation'] and the model card"
    )
    p.set_defaults(run=_eval, default_threads=1)


def _eval(args) -> int:
    from worldenv.eval.evaluate import EvalConfig, evaluate, summary_table
    from worldenv.eval.plots import plot_horizon_curves
    from worldenv.io import atomic_write_json

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
        _record_in_bundle(
            args.checkpoint, "evaluation", {"command": shlex.join(["worldenv", *args.argv]), "report": report}, args.json
        )
    return 0


def _eval_memory(args) -> int:
    from worldenv.eval.plots import plot_revisits
    from worldenv.eval.revisit import RevisitConfig, revisit_suite, revisit_table
    from worldenv.io import atomic_write_json

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

    from worldenv.checkpoint import CheckpointError, load_bundle, update_bundle
    from worldenv.eval.card import render_card

    kept = f"the report is in {report}" if report else "the table above is the report (--json keeps it whole)"
    try:
        metadata = {**load_bundle(checkpoint).metadata, key: {**evaluation, "date": date.today().isoformat()}}
        update_bundle(checkpoint, metadata=metadata, card=render_card(metadata))
    except (CheckpointError, OSError) as error:
        raise CheckpointError(f"--update-card: could not record the evaluation in {checkpoint} ({error}); {kept}") from error


# ---- compare -----------------------------------------------------------------
def add_compare(commands) -> None:
    p = commands.add_parser(
        "compare",
        help="quality against speed: several models of a bundle on the same MuJoCo episodes, each timed as a dream env",
        description="Score each component@steps on the same held-out episodes and actions (PSNR, SSIM, state probe "
        "per horizon, beside copy-last-frame) and time it as a dream env on this machine; a table, JSON and a PNG frontier.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="bundle directory (with probe and start contexts)")
    p.add_argument(
        "--models",
        nargs="+",
        required=True,
        help="component@steps, e.g. teacher@8 student_consistency@1; component@stepsgG adds action guidance G "
        "(student_consistency@1g1.8), a +frame suffix commits the re-encoded frame (student_consistency@1+frame)",
    )
    p.add_argument("--episodes", type=int, default=4, help="episodes per action policy (default 4)")
    p.add_argument("--horizon", type=int, default=200, help="frames dreamed after the context (default 200)")
    p.add_argument("--speed-envs", type=int, nargs="+", default=[1, 16], help="batch sizes timed (default 1 16)")
    add_dream_arguments(p, serving=False)  # each of --models is a serving choice; these hold for every one
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--plot", type=Path, help="write the quality-speed frontier here (PNG)")
    p.add_argument(
        "--serve",
        help="one of --models (component@steps[gG][+frame]): record it in the bundle as what its dreams use "
        "by default, with this comparison as the evidence",
    )
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
    report = compare(
        args.checkpoint,
        entries,
        EvalConfig(episodes=args.episodes, horizon=args.horizon, dream=dream_config(args)),
        speed_envs=tuple(args.speed_envs),
    )
    report["command"] = shlex.join(["worldenv", *args.argv])
    if args.json:
        atomic_write_json(args.json, report)
    if args.plot:
        plot_frontier(report, args.plot)
    table = comparison_table(report)
    if args.serve is not None:
        from worldenv.checkpoint import load_bundle, update_bundle
        from worldenv.eval.card import render_card

        serving = {**parse_model(args.serve, "--serve").record(), "command": report["command"], "comparison": table}
        metadata = {**load_bundle(args.checkpoint).metadata, "serving": serving}
        update_bundle(args.checkpoint, metadata=metadata, card=render_card(metadata))
    print(table)
    return 0


# ---- record ------------------------------------------------------------------
def add_record(commands) -> None:
    p = commands.add_parser(
        "record",
        help="write a video of the dream beside MuJoCo (dream | MuJoCo | difference) for the same start and actions",
        description="Prime the dream with real MuJoCo frames, then give both worlds the same actions and write "
        "the frames side by side (mp4 or gif, by OUT's suffix).",
    )
    p.add_argument("out", type=Path, help="OUT.mp4 or OUT.gif")
    p.add_argument("--checkpoint", type=Path, help="bundle directory (default: the shipped one of --scene)")
    p.add_argument("--scene", help="scene of the shipped checkpoint to use (default reacher)")
    p.add_argument(
        "--policy",
        default="random",
        help="random (uniform), smooth, goal, or PATH of a stable-baselines3 PPO .zip (default random)",
    )
    p.add_argument("--steps", type=int, default=200, help="dreamed frames after the context (default 200)")
    p.add_argument("--context", type=int, default=4, help="real frames that prime the dream (default 4)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    add_dream_arguments(p)
    p.set_defaults(run=_record, default_threads=1)


def _record(args) -> int:
    from worldenv.eval.record import paired_rollout, report_lines, write_side_by_side

    if args.out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"OUT: expected a .mp4 or .gif path, got {args.out}")
    rollout = paired_rollout(
        args.checkpoint,
        args.policy,
        args.steps,
        seed=args.seed,
        context=args.context,
        scene=args.scene,
        dream_config=dream_config(args),
    )
    write_side_by_side(rollout, args.out)
    print(f"{args.out}: {len(rollout.dream)} frames (dream | MuJoCo | difference x3)")
    for line in report_lines(rollout):
        print(line)
    return 0


# ---- bench -------------------------------------------------------------------
def add_bench(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="measure speeds: scenes (MuJoCo step+render per scene), sampler (windows/s), dream (per batch size), "
        "long (5000-step dreams), worlds (every world of a bundle beside MuJoCo, with fidelity)",
        description="Print a markdown table of speeds measured in this run: scenes, MuJoCo step+render per scene; "
        "sampler, training windows per second; dream, the dream env per batch size beside MuJoCo; long, long dreams "
        "(ms/step, memory, frame range); worlds, the served dream, the teacher at its best, each student and MuJoCo at each "
        "batch size and dtype, with PSNR at horizons 1 and 10 and the action gain beside the speed (--json, --plot).",
    )
    p.add_argument("what", choices=["scenes", "sampler", "dream", "long", "worlds"], help="what to measure")
    p.add_argument("--steps", type=int, default=2000, help="steps per scene measurement (scenes)")
    p.add_argument("--dataset", type=Path, help="dataset directory (sampler)")
    p.add_argument("--length", type=int, default=16, help="window length in frames (sampler)")
    p.add_argument("--batch", type=int, default=32, help="windows per batch (sampler)")
    p.add_argument("--checkpoint", type=Path, help="bundle directory (dream; default the shipped reacher)")
    # dream: a row per sampling steps, dtype and batch size; long: a rollout per bundle and dtype, each bundle
    # dreaming its own serving choice.
    add_dream_arguments(
        p,
        {"model": "teacher", "sampling_steps": [4, 1], "action_guidance": 1.0, "commit": "latent", "dtype": ["auto"]},
        several=("sampling_steps", "dtype"),
    )
    p.add_argument("--envs", type=int, nargs="+", default=[1, 16, 64, 256], help="batch sizes (dream)")
    p.add_argument("--seconds", type=float, default=6.0, help="measuring time per batch size (dream)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure MuJoCo and every dream this many times in turn; "
        "medians, and the range of each ratio to MuJoCo (dream; default 1)",
    )
    p.add_argument(
        "--bundles",
        type=Path,
        nargs="+",
        help="bundles dreamed for --steps frames each, with the model "
        "they serve by default (long; default the shipped reacher and panorama)",
    )
    p.add_argument(
        "--compile",
        choices=["off", "on"],
        nargs="+",
        default=["off"],
        help="the networks under torch.compile, off and/or on: a row each (dream, worlds; default off)",
    )
    p.add_argument(
        "--observation",
        choices=["pixels", "latent", "probe"],
        nargs="+",
        default=["pixels"],
        help="what the timed envs observe: a row each (dream, worlds; default pixels)",
    )
    p.add_argument("--episodes", type=int, default=2, help="episodes per action policy scored for fidelity (worlds)")
    p.add_argument("--gain-starts", type=int, default=2, help="real starts of the action-gain pushes (worlds)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run: batches 1 and 16, 1 s each, one episode and start for fidelity (worlds)",
    )
    p.add_argument("--json", type=Path, help="write the report here (dream, long, worlds)")
    p.add_argument("--plot", type=Path, help="write env-steps/s against batch size here, PNG (worlds)")
    p.set_defaults(run=_bench, default_threads=1)


def _bench(args) -> int:
    from worldenv.eval import bench
    from worldenv.io import atomic_write_json

    if args.what == "scenes":
        print(bench.scenes_table(steps=args.steps))
    elif args.what == "long":
        _bench_long(args)
    elif args.what == "worlds":
        _bench_worlds(args)
    elif args.what == "dream":
        configs = [
            dream_config(args, sampling_steps=steps, dtype=dtype, **extra)
            for steps in args.sampling_steps
            for dtype in args.dtype
            for extra in _settings(args)
        ]
        report = bench.dream_report(
            configs, args.checkpoint, batches=args.envs, seconds=args.seconds, scene_steps=args.steps, rounds=args.rounds
        )
        if args.json:
            atomic_write_json(args.json, {"command": shlex.join(["worldenv", *args.argv]), **report})
        print(bench.dream_table(report))
    else:
        if args.dataset is None:
            raise ValueError("bench sampler needs --dataset DIR")
        print(bench.sampler_table(args.dataset, length=args.length, batch=args.batch))
    return 0


def _settings(args) -> tuple[dict, ...]:
    """--compile and --observation: the ``DreamConfig`` fields of one timed row each."""
    return tuple(
        {"compile": compile == "on", "observation": observation} for compile in args.compile for observation in args.observation
    )


def _bench_worlds(args) -> None:
    from worldenv.checkpoint import shipped_checkpoint
    from worldenv.eval import bench
    from worldenv.io import atomic_write_json

    checkpoint = args.checkpoint or shipped_checkpoint("reacher")
    dtypes = ["float32", "bfloat16"] if args.dtype == ["auto"] else args.dtype  # both unless told
    quick = {"batches": (1, 16), "seconds": 1.0, "episodes": 1, "gain_starts": 1, "scene_steps": 200} if args.quick else {}
    options = {
        "batches": tuple(args.envs),
        "seconds": args.seconds,
        "episodes": args.episodes,
        "gain_starts": args.gain_starts,
        "scene_steps": args.steps,
        **quick,
    }
    report = bench.worlds_report(
        checkpoint, dtypes=tuple(dtypes), rounds=args.rounds, settings=_settings(args), device=args.device, **options
    )
    report["command"] = shlex.join(["worldenv", *args.argv])
    if args.json:
        atomic_write_json(args.json, report)
    if args.plot:
        bench.plot_worlds(report, args.plot)
    print(bench.worlds_table(report))


def _bench_long(args) -> None:
    from worldenv.checkpoint import shipped_checkpoint
    from worldenv.eval import bench
    from worldenv.eval.long_rollout import LongRolloutConfig, long_rollout, long_rollout_table
    from worldenv.io import atomic_write_json

    bundles = args.bundles or [shipped_checkpoint("reacher"), shipped_checkpoint("panorama")]
    reports = []
    marks = tuple(m for m in (50, 500, 5000) if m < args.steps) + (args.steps,)
    for bundle in bundles:
        for dtype in args.dtype:
            served = dream_config(args, model=None, sampling_steps=None, action_guidance=None, commit=None, dtype=dtype)
            reports.append(long_rollout(bundle, LongRolloutConfig(steps=args.steps, marks=marks, dream=served)))
    if args.json:
        atomic_write_json(
            args.json, {"machine": bench.machine(), "command": shlex.join(["worldenv", *args.argv]), "reports": reports}
        )
    print(f"machine: {bench.machine()}, {reports[0]['threads']} threads\n")
    print(long_rollout_table(reports))


# ---- demo --------------------------------------------------------------------
def add_demo(commands) -> None:
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

    for line in run_demo(
        args.out,
        steps=args.steps,
        policy=args.policy,
        gallery_episodes=args.episodes,
        gallery_steps=args.episode_steps,
        workers=args.workers,
    ):
        print(line, flush=True)
    return 0
