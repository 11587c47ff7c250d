"""Start contexts: real MuJoCo frames that a dream starts from.

A dream cannot start from nothing: ``reset`` primes the world model with a few
real frames and the actions that led to them. A bank of such contexts is stored
in the checkpoint bundle (component ``contexts``), so that
``gym.make("DiffusionWorld-v0").reset(seed=s)`` needs no simulator: the seed
picks one context. Each is the start of a MuJoCo episode under the scene's
exploration mix, from seeds disjoint from training data and evaluation, and its
episode seed is kept so the ground truth can be replayed.
"""

import torch
from torch import nn

from worldenv.checkpoint import Bundle, CheckpointError
from worldenv.data.collect import CollectConfig, run_episode
from worldenv.data.policies import make_policy
from worldenv.scenes import make_scene

COMPONENT = "contexts"
DEFAULT_SEED = 200_000  # collection uses 0 and evaluation 100_000 by default


class StartContexts(nn.Module):
    """``frames`` (N, T, H, W, 3) uint8 and ``actions`` (N, T, A) float32, each action
    the one that led to its frame (zeros before an episode's first frame)."""

    def __init__(self, count: int, length: int, height: int, width: int, action_dim: int):
        super().__init__()
        self.register_buffer("frames", torch.zeros(count, length, height, width, 3, dtype=torch.uint8))
        self.register_buffer("actions", torch.zeros(count, length, action_dim))
        self.register_buffer("episode_seeds", torch.zeros(count, dtype=torch.int64))

    @property
    def count(self) -> int:
        return self.frames.shape[0]

    @property
    def length(self) -> int:
        return self.frames.shape[1]


def record_start_contexts(scene: str, count: int, length: int, size: int, seed: int = DEFAULT_SEED) -> tuple[StartContexts, dict]:
    """Run ``count`` MuJoCo episodes of ``length`` frames; returns the bank and its config.
    Episodes that end before ``length`` frames (a pole that fell) are skipped."""
    if count < 1 or length < 2:
        raise ValueError(f"expected count >= 1 contexts of length >= 2 frames, got {count} and {length}")
    config = CollectConfig(scene=scene, episodes=count, steps_per_episode=length - 1, seed=seed, width=size, height=size)
    env = make_scene(scene, width=size, height=size)
    policy = make_policy(config.policy)
    episodes, attempt = [], 0
    while len(episodes) < count:
        episode = run_episode(env, policy, config, attempt)
        attempt += 1
        if len(episode.frames) == length:
            episodes.append(episode)
        elif attempt > 10 * count:
            raise RuntimeError(f"{scene}: fewer than {count} of {attempt} episodes lasted {length} frames")
    env.close()
    bank = StartContexts(count, length, size, size, episodes[0].actions.shape[-1])
    for i, episode in enumerate(episodes):
        bank.frames[i] = torch.from_numpy(episode.frames)
        bank.actions[i, 1:] = torch.from_numpy(episode.actions)
        bank.episode_seeds[i] = episode.seed
    bank_config = {"count": count, "length": length, "size": size, "action_dim": bank.actions.shape[-1],
                   "policy": config.policy, "seed": seed}
    return bank, bank_config


def load_start_contexts(bundle: Bundle) -> StartContexts:
    if COMPONENT not in bundle.components:
        raise CheckpointError(
            f"{bundle.path}: has no start contexts; add them with `worldenv contexts --checkpoint {bundle.path}`"
        )
    c = bundle.config(COMPONENT)
    bank = StartContexts(c["count"], c["length"], c["size"], c["size"], c["action_dim"])
    bundle.load_into(COMPONENT, bank)
    return bank
