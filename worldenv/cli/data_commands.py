"""``worldenv init``, ``collect``, ``inspect`` and ``contexts``: the MuJoCo ground truth and its data."""

import shlex
import sys
from pathlib import Path


# ---- init --------------------------------------------------------------------
def add_init(commands) -> None:
    p = commands.add_parser(
        "init",
        help="write a preset for a Gymnasium MuJoCo env (scene gym:ENV) to stdout",
        description="Size a preset (collect, tokenizer, teacher, probe, consistency) from the env's spaces and "
        "episode length: worldenv init --env HalfCheetah-v5 > configs/halfcheetah.yaml",
    )
    p.add_argument(
        "--env", required=True, help="Gymnasium id (HalfCheetah-v5), module:Id-v0 or module:constructor; @camera picks a camera"
    )
    p.add_argument("--expert", type=Path, help="an SB3 policy.zip acting on the env's observations: its episodes join the mix")
    p.add_argument("--expert-algo", default="ppo", help="the expert's SB3 algorithm: ppo (default), sac, td3, a2c or ddpg")
    p.add_argument("--root", default="", help="prefix of the preset's data/, runs/ and checkpoints/ paths (default: none)")
    p.set_defaults(run=_init)


def _init(args) -> int:
    from worldenv.init_config import preset, render

    expert = None if args.expert is None else {"path": str(args.expert), "algo": args.expert_algo, "deterministic": True}
    document = preset(args.env, expert=expert, root=args.root)
    sys.stdout.write(render(document, shlex.join(["worldenv", *args.argv])))
    return 0


# ---- collect -----------------------------------------------------------------
def add_collect(commands) -> None:
    p = commands.add_parser(
        "collect",
        help="run a MuJoCo scene under exploration policies and store the episodes",
        description="Collect episodes in worker processes. Rerunning the same command finishes an interrupted "
        "collection; shards already written are kept.",
    )
    p.add_argument("--config", type=Path, help="YAML preset whose 'collect' section gives the defaults")
    p.add_argument("--scene", help="reacher, cartpole, panorama, duo, or gym:ENV (a Gymnasium MuJoCo env: gym:HalfCheetah-v5)")
    p.add_argument("--episodes", type=int, help="number of episodes")
    p.add_argument("--steps", dest="steps_per_episode", type=int, help="maximum steps per episode (default 200)")
    p.add_argument(
        "--policy",
        help="exploration policy: mix (default), uniform, jitter, smooth, gentle, goal, roam (the expert steered "
        "into the ends of its range; cartpole), push (held pushes, often at a bound), or trained (an agent's "
        "policy.zip, --agent)",
    )
    p.add_argument("--agent", type=Path, help="with --policy trained: the SB3 policy.zip that acts (agents/ppo_dream.py's)")
    p.add_argument(
        "--agent-checkpoint",
        type=Path,
        help="with --policy trained: the bundle whose state probe the agent observes through (default: the scene's shipped one)",
    )
    p.add_argument("--agent-stack", type=int, help="with --policy trained: probe readings stacked (default 2)")
    p.add_argument(
        "--agent-deterministic",
        action="store_true",
        help="with --policy trained: the policy's mean action (default: sampled, as in PPO's training episodes)",
    )
    p.add_argument("--seed", type=int, help="base seed; episode i uses a seed derived from (seed, i)")
    p.add_argument("--shard-size", type=int, help="episodes per shard file (default 20)")
    p.add_argument("--width", type=int, help="frame width in pixels (default 64)")
    p.add_argument("--height", type=int, help="frame height in pixels (default 64)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes, each with its own renderer; 1 collects in this process (default 2)",
    )
    p.add_argument("--out", type=Path, required=True, help="dataset directory (created; its parent must be writable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_collect)


def _collect(args) -> int:
    from dataclasses import replace

    from worldenv import config
    from worldenv.checkpoint import shipped_checkpoint
    from worldenv.config import ConfigError
    from worldenv.data.collect import CollectConfig, CollectionInterrupted, collect
    from worldenv.data.trained_policy import TrainedPolicy
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
        cfg = replace(
            cfg,
            policy=TrainedPolicy.name,
            exploration_mix=None,
            trained_policy={
                "path": str(args.agent),
                "checkpoint": str(args.agent_checkpoint or shipped_checkpoint(cfg.scene)),
                "stack": args.agent_stack or 2,
                "deterministic": args.agent_deterministic,
                "sha256": sha256_file(args.agent),
            },
        )
        cfg.validate()
    try:
        manifest = collect(cfg, args.out, workers=args.workers, progress=not args.no_progress)
    except CollectionInterrupted as stopped:
        print(f"worldenv collect: {stopped}", file=sys.stderr)
        return 130  # the shell's code for a Ctrl-C
    print(f"{args.out}: {manifest.episodes} {cfg.scene} episodes, {manifest.steps} steps")
    return 0


# ---- inspect -----------------------------------------------------------------
def add_inspect(commands) -> None:
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


# ---- contexts ----------------------------------------------------------------
def add_contexts(commands) -> None:
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
    from worldenv.checkpoint import check_writable, load_bundle, update_bundle
    from worldenv.contexts import COMPONENT, DEFAULT_SEED, record_start_contexts
    from worldenv.eval.card import render_card
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
