"""``worldenv init --env HalfCheetah-v5``: a preset for a ``gym:`` scene, sized from the env.

The preset has configs/reacher.yaml's sections (collect, tokenizer, teacher, probe,
consistency) and keys; what changes with the env:

- ``collect``: episodes of at most ``STEPS_PER_EPISODE`` steps (the env's own limit if
  shorter), ``REACHER_FRAMES`` frames in all (the reacher's dataset) times the square root of
  the action dimensions over the reacher's 2, as more joints need more of their
  combinations shown, counting the frames of episodes that white noise ends early; 8
  steps past a termination where the env can terminate (the cartpole's lesson: without
  them a dream never ends); an SB3 expert in the mix if given.
- ``tokenizer``, ``teacher``: the cartpole's small models for an env of at most 2 action
  dimensions, the reacher's beyond, with the reacher's action history and action flow.
- the teacher's and student's termination loss weighted 5x where episodes terminate.

Whether and how soon an env terminates is measured: a few episodes of white noise in the
env itself (no rendering), as a third of the exploration mix acts.
"""

import copy
import math
from pathlib import Path

import numpy as np
import yaml

from worldenv.scenes import GYM_PREFIX, directory_name, scene_info

STEPS_PER_EPISODE = 250  # as the reacher's and cartpole's: eval dreams 200 frames after a 4-frame context
REACHER_FRAMES = 250_000  # configs/reacher.yaml: 1000 episodes x 250 steps
REACHER_ACTIONS = 2
SMALL_ENV_ACTIONS = 2  # up to this many action dimensions, the cartpole's model sizes
NOISE_EPISODES, NOISE_STEPS = 8, 200  # the termination probe


def noise_episodes(scene: str, seed: int = 0) -> tuple[float, bool]:
    """Mean length of a few episodes of white noise (at most ``NOISE_STEPS`` steps), and whether
    any terminated; in the env itself, unrendered."""
    from worldenv.scenes.gym_scene import make_inner

    env = make_inner(scene.removeprefix(GYM_PREFIX).partition("@")[0])
    env.action_space.seed(seed)
    lengths = []
    try:
        for episode in range(NOISE_EPISODES):
            env.reset(seed=seed + episode)
            steps = 0
            while steps < NOISE_STEPS:
                steps += 1
                if env.step(env.action_space.sample())[2]:
                    break
            lengths.append(steps)
    finally:
        env.close()
    return float(np.mean(lengths)), min(lengths) < NOISE_STEPS


def preset(env: str, expert: dict | None = None, root: str = "") -> dict:
    """The preset of ``gym:<env>`` as a mapping; ``expert``: CollectConfig.expert (an SB3
    policy in the mix); ``root`` prefixes its data, runs and checkpoints directories."""
    from worldenv.scenes import scene_class

    scene = env if env.startswith(GYM_PREFIX) else GYM_PREFIX + env
    info, scene_type = scene_info(scene), scene_class(scene)  # refuses what is not a Box-action MuJoCo env
    probe_env = scene_type(width=16, height=16)
    action_dim = probe_env.action_dim
    probe_env.close()
    name = directory_name(env)
    data, bundle, runs = f"{root}data/{name}", f"{root}checkpoints/{name}", f"{root}runs/{name}"
    steps = min(STEPS_PER_EPISODE, info.max_episode_steps)
    scale = math.sqrt(max(1.0, action_dim / REACHER_ACTIONS))
    noise_length, ends = noise_episodes(scene)
    # Episodes that noise ends early (a pendulum falls in a dozen steps) hold fewer frames:
    # more of them make up the frames.
    frames_per_episode = (min(noise_length, steps) + 8) if ends else steps
    episodes = int(math.ceil(REACHER_FRAMES * scale / frames_per_episode / 100) * 100)
    held_out = max(20, episodes // 40)
    small = action_dim <= SMALL_ENV_ACTIONS
    mix = dict(scene_type.exploration_mix)
    if expert is not None:  # the expert's states (a running cheetah) for a third of the segments
        mix = {**{k: round(v * 2 / 3, 3) for k, v in mix.items()}, "goal": 0.333}
    collect: dict = {"scene": scene, "episodes": episodes, "steps_per_episode": steps, "policy": "mix", "seed": 0}
    # Shards of about the reacher's 20 x 250 frames, however short the episodes.
    shard_size = max(20, int(20 * STEPS_PER_EPISODE / frames_per_episode) // 10 * 10)
    collect |= {"shard_size": shard_size, "exploration_mix": mix}
    if ends:
        collect["frames_after_termination"] = 8
    if expert is not None:
        collect["expert"] = expert
    # A copy per section: shared objects would be written as YAML anchors (&id001).
    common = {"data": {"path": data, "held_out_episodes": held_out}, "bundle": bundle}

    def train(steps: int, batch: int, lr: float, warmup: int) -> dict:
        return {
            "steps": steps,
            "batch": batch,
            "lr": lr,
            "warmup": warmup,
            "ema_decay": 0.999,
            "log_every": 50,
            "checkpoint_every": 250,
        }

    teacher_model = {
        "latent_channels": 16,
        "grid": 8,
        "action_dim": action_dim,
        "width": 64 if small else 128,
        "depth": 4 if small else 6,
        "heads": 4,
        "sink_frames": 1,
        "window_frames": 3 if small else 5,
        "action_history": 4,
        "action_flow": True,
    }
    weight = {"termination_pos_weight": 5.0} if ends else {}
    return {
        "collect": collect,
        "tokenizer": {
            **copy.deepcopy(common),
            "run": f"{runs}/tokenizer",
            "model": {
                "channels": [16, 32, 64] if small else [32, 64, 128],
                "blocks_per_level": 1,
                "latent_channels": 16,
                "edge_weight": 10.0,
            },
            "train": train(3000 if small else 8000, 32, 0.001, 200),
        },
        "teacher": {
            **copy.deepcopy(common),
            "run": f"{runs}/teacher",
            "model": teacher_model,
            **weight,
            "train": train(8000, 16, 0.0005, 500),
        },
        "probe": {**copy.deepcopy(common), "steps": 3000, "batch": 64},
        "consistency": {
            **copy.deepcopy(common),
            "run": f"{runs}/consistency",
            "intervals": 16,
            "sampling_steps": 1,
            **weight,
            "train": train(2000, 16, 0.0001, 100),
        },
    }


def render(document: dict, command: str) -> str:
    """The preset as YAML, headed by what made it and how to use it."""
    scene, name = document["collect"]["scene"], Path(document["tokenizer"]["bundle"]).name
    head = [
        f"# {scene} preset, written by `{command}`:",
        "# sized from the env's spaces and episode length (worldenv/init_config.py says how).",
        f"# worldenv collect --config configs/{name}.yaml --out {document['tokenizer']['data']['path']}",
        f"# worldenv train tokenizer|teacher|probe --config configs/{name}.yaml, then worldenv distill --method consistency",
        "# docs/bring-your-own-env.md walks the whole path and says what it costs.",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)
