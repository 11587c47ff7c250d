"""How fast PPO trains in the dream against in MuJoCo, side by side in one run.

Each world trains the same PPO (``ppo_dream.py``, probe observations, no scoring during
training) for the same env-step budget at each of several batch sizes (``--num-envs``),
one run after another, alone on the machine, in interleaved rounds so that a machine
whose speed drifts slows both worlds alike. Each world is then taken at its best batch:
a batched dream gains from large batches, MuJoCo envs stepped in one process do not.
The dream is served as the bundle says, or as ``--model``, ``--sampling-steps``,
``--action-guidance``, ``--commit`` and ``--dtype`` ask. The rate is ``ppo_dream.py``'s
``train_env_steps_per_s``: every env step of training, with PPO's own updates and the
envs' creation, in wall clock.

    python agents/train_speed.py --scene reacher --dtype bfloat16 --num-envs 16 64 --rounds 2

Writes ``OUT/train_speed.json``: every run's rate, the median per world and batch, and
the ratio of the dream's best median to MuJoCo's (above 1: the dream trains faster).
"""

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from agents.common import ServingArgs, exit_with

logger = logging.getLogger("agents")
WORLDS = ("dream", "mujoco")


@dataclass
class Args(ServingArgs):
    scene: str = field(default="reacher", metadata={"help": "scene: reacher, cartpole, panorama or duo"})
    checkpoint: str | None = field(
        default=None, metadata={"help": "dream bundle (and its probe); unset: the scene's shipped one"}
    )
    num_envs: list[int] = field(default_factory=lambda: [16, 64], metadata={"help": "batch sizes tried in each world"})
    env_steps: int = field(default=16384, metadata={"help": "training budget of each run in env steps"})
    rounds: int = field(default=2, metadata={"help": "interleaved rounds over every world and batch size"})
    n_steps: int = field(default=128, metadata={"help": "PPO rollout length per env and update"})
    batch_size: int = field(default=256, metadata={"help": "PPO minibatch size"})
    seed: int = field(default=0, metadata={"help": "seed of every run"})
    threads: int = field(default=2, metadata={"help": "torch threads of each run"})
    out: str = field(default="runs/agents/train-speed", metadata={"help": "output directory"})


def train_rate(args: Args, world: str, num_envs: int) -> float:
    """Env steps per second of one ``ppo_dream.py`` training run in a subprocess."""
    command = [
        sys.executable,
        "-m",
        "agents.ppo_dream",
        "--scene",
        args.scene,
        "--world",
        world,
        "--env-steps",
        str(args.env_steps),
        "--num-envs",
        str(num_envs),
        "--n-steps",
        str(args.n_steps),
        "--batch-size",
        str(args.batch_size),
        "--eval-every",
        str(10 * args.env_steps),
        "--eval-episodes",
        "1",
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--no-video",
    ]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    for name, value in args.serving_args().items():  # how the dream is served, as ppo_dream.py takes it
        if value is not None:
            command += ["--" + name.replace("_", "-"), str(value)]
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([*command, "--out", out], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ppo_dream.py failed for world={world} num_envs={num_envs}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["train_env_steps_per_s"]


def run(args: Args) -> dict:
    if not args.num_envs or min(args.num_envs) < 1 or args.rounds < 1:
        raise ValueError(f"expected --num-envs of positive sizes and --rounds >= 1, got {args.num_envs} and {args.rounds}")
    rates = {world: {n: [] for n in args.num_envs} for world in WORLDS}
    for round_index in range(args.rounds):
        for n in args.num_envs:  # the worlds alternate, so a drift in machine speed meets both
            for world in WORLDS if round_index % 2 == 0 else reversed(WORLDS):
                rates[world][n].append(train_rate(args, world, n))
                logger.info("round %d, %s, %d envs: %.1f env-steps/s", round_index, world, n, rates[world][n][-1])
    medians = {world: {n: float(np.median(r)) for n, r in by_n.items()} for world, by_n in rates.items()}
    best = {world: max(by_n, key=by_n.get) for world, by_n in medians.items()}
    summary = {
        "args": asdict(args),
        "rates": rates,
        "median": medians,
        "best_num_envs": best,
        "dream_over_mujoco": medians["dream"][best["dream"]] / medians["mujoco"][best["mujoco"]],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_speed.json").write_text(json.dumps(summary, indent=2))
    for world in WORLDS:
        for n in args.num_envs:
            logger.info("| %s | %d | %.0f | %s |", world, n, medians[world][n], ", ".join(f"{r:.0f}" for r in rates[world][n]))
    return summary


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
