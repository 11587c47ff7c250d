"""Start contexts: real MuJoCo frames that a dream starts from.

A dream cannot start from nothing: ``reset`` primes the world model with a few
real frames and the actions that led to them. A bank of such contexts is stored
in the checkpoint bundle (component ``contexts``), so that
``gym.make("DiffusionWorld-v0").reset(seed=s)`` needs no simulator: the seed
picks one context. Each is the start of a MuJoCo episode under the scene's
exploration mix, from seeds disjoint from training data and evaluation, and its
episode seed is kept so the ground truth can be replayed.

A bank recorded with ``within=W`` holds windows that begin anywhere in the first W
steps of their episodes (``offsets``): the states an episode passes through, not
only its start, as DIAMOND's and Dreamer's imagination starts from any state of the
replay buffer; ``policy`` picks whose episodes (the scene's exploration mix, or
``roam``, the expert steered across the scene). An agent that learns in short dreams
from such starts needs the dream to be right for a few steps at a time, not for a
whole episode.
"""

import logging

import numpy as np
import torch
from torch import nn

from worldenv.checkpoint import Bundle, CheckpointError
from worldenv.data.collect import CollectConfig, run_episode
from worldenv.data.format import Episode
from worldenv.data.policies import make_policy
from worldenv.scenes import make_scene

logger = logging.getLogger(__name__)
COMPONENT = "contexts"
DEFAULT_SEED = 200_000  # collection uses 0 and evaluation 100_000 by default


class StartContexts(nn.Module):
    """``frames`` (N, T, H, W, 3) uint8 and ``actions`` (N, T, A) float32, each action
    the one that led to its frame (zeros before an episode's first frame)."""

    # Buffers (register_buffer below), declared so that the checker knows them as tensors.
    frames: torch.Tensor
    actions: torch.Tensor
    episode_seeds: torch.Tensor
    offsets: torch.Tensor

    def __init__(self, count: int, length: int, height: int, width: int, action_dim: int):
        super().__init__()
        self.register_buffer("frames", torch.zeros(count, length, height, width, 3, dtype=torch.uint8))
        self.register_buffer("actions", torch.zeros(count, length, action_dim))
        self.register_buffer("episode_seeds", torch.zeros(count, dtype=torch.int64))
        # The step of its episode at which each context begins. Not stored: a shipped bank's
        # contexts all begin at their episode's first frame, and its file stays as it was.
        self.register_buffer("offsets", torch.zeros(count, dtype=torch.int64), persistent=False)

    @property
    def count(self) -> int:
        return self.frames.shape[0]

    @property
    def length(self) -> int:
        return self.frames.shape[1]


def record_start_contexts(
    scene: str, count: int, length: int, size: int, seed: int = DEFAULT_SEED, within: int = 0, policy: str = "mix"
) -> tuple[StartContexts, dict]:
    """Run ``count`` MuJoCo episodes under the exploration ``policy`` and keep a window of
    ``length`` frames of each, beginning at a step drawn uniformly from those of the
    episode's first ``within`` + 1 (0: its first frame); returns the bank and its config.
    Episodes that end before a window fits (a pole that fell) are skipped. The windows'
    draws have their own generator, so the episodes are those of the same policy's bank
    with ``within=0``, run further."""
    if count < 1 or length < 2:
        raise ValueError(f"expected count >= 1 contexts of length >= 2 frames, got {count} and {length}")
    if isinstance(within, bool) or not isinstance(within, (int, np.integer)) or within < 0:
        raise ValueError(f"expected within to be a number of steps >= 0, got {within!r}")
    config = CollectConfig(
        scene=scene, episodes=count, steps_per_episode=int(within) + length - 1, seed=seed, policy=policy, width=size, height=size
    )
    env = make_scene(scene, width=size, height=size)
    actor = make_policy(config.policy)
    offset_rng = np.random.default_rng([seed, int(within)])
    episodes: list[Episode] = []
    offsets: list[int] = []
    attempt = 0
    while len(episodes) < count:
        episode = run_episode(env, actor, config, attempt)
        attempt += 1
        if len(episode.frames) >= length:
            episodes.append(episode)
            offsets.append(int(offset_rng.integers(len(episode.frames) - length + 1)))
        elif attempt > 10 * count:
            raise RuntimeError(f"{scene}: fewer than {count} of {attempt} episodes lasted {length} frames")
    env.close()
    bank = StartContexts(count, length, size, size, episodes[0].actions.shape[-1])
    for i, (episode, offset) in enumerate(zip(episodes, offsets)):
        window = slice(offset, offset + length)
        bank.frames[i] = torch.from_numpy(episode.frames[window])
        # Each frame's action is the one that led to it: the first frame's is the step before
        # the window (none at an episode's first frame).
        led_to = episode.actions[max(offset - 1, 0) : offset + length - 1]
        bank.actions[i, length - len(led_to) :] = torch.from_numpy(led_to)
        bank.episode_seeds[i] = episode.seed
        bank.offsets[i] = offset
    bank_config = {
        "count": count,
        "length": length,
        "size": size,
        "action_dim": bank.actions.shape[-1],
        "policy": config.policy,
        "seed": seed,
        "within": int(within),
    }
    return bank, bank_config


def load_start_contexts(bundle: Bundle) -> StartContexts:
    if COMPONENT not in bundle.components:
        raise CheckpointError(
            f"{bundle.path}: has no start contexts; add them with `worldenv contexts --checkpoint {bundle.path}`"
        )
    c = bundle.config(COMPONENT, "count", "length", "size", "action_dim")
    bank = StartContexts(c["count"], c["length"], c["size"], c["size"], c["action_dim"])
    bundle.load_into(COMPONENT, bank)
    return bank


def record_bundle_starts(bundle: Bundle, count: int, within: int = 0, policy: str = "mix") -> StartContexts:
    """A bank of ``count`` starts recorded now in the bundle's MuJoCo scene (data collection,
    tens of milliseconds a start), as ``worldenv contexts --count N`` records the bundle's own
    bank: with its seed, window length and frame size, so its first starts are the bundle's.
    ``within``, ``policy``: as for ``record_start_contexts``."""
    shipped = load_start_contexts(bundle)
    seed = bundle.config(COMPONENT).get("seed", DEFAULT_SEED)
    logger.info(
        "recording %d start contexts of %d frames in the MuJoCo scene %r (within %d steps of their episodes' starts, under %r)",
        count,
        shipped.length,
        bundle.scene,
        within,
        policy,
    )
    bank, _ = record_start_contexts(bundle.scene, count, shipped.length, shipped.frames.shape[2], seed, within, policy)
    return bank
