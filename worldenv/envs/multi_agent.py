"""The multi-agent dream as PettingZoo envs: ``worldenv.envs.parallel_env(scene="duo")``.

Each agent sends its part of the joint action and gets its own reward from the
model's per-agent reward heads, exactly as in the ground truth's
``worldenv.scenes.duo.parallel_env()`` (both are ``multi_agent.SplitParallelEnv``).
"""

import warnings
from collections.abc import Mapping

from pettingzoo import AECEnv
from pettingzoo.utils.conversions import parallel_to_aec

from worldenv.envs.dream import require_open
from worldenv.envs.single import RESET_OPTIONS, DiffusionWorldEnv
from worldenv.multi_agent import SplitParallelEnv
from worldenv.scenes import scene_info


class DreamParallelEnv(SplitParallelEnv):
    """PettingZoo's API test resets with ``options={"options": 1}``: a PettingZoo env takes any
    options. The dream passes on its own (``RESET_OPTIONS``) and warns about the others, which
    it does not use, where the Gymnasium dream refuses them."""

    def reset(self, seed: int | None = None, options: dict | None = None):
        if isinstance(options, Mapping):
            ignored = [key for key in options if key not in RESET_OPTIONS]
            if ignored:
                warnings.warn(
                    f"{self.name}.reset: ignoring options {ignored}; the dream's are {list(RESET_OPTIONS)}", stacklevel=2
                )
                options = {key: value for key, value in options.items() if key in RESET_OPTIONS}
        return super().reset(seed=seed, options=options)


def parallel_env(scene: str = "duo", max_cycles: int | None = None, **dream_kwargs) -> DreamParallelEnv:
    """``max_cycles``: steps before every agent is truncated (the scene's time limit by default);
    ``dream_kwargs``: as for ``DiffusionWorldEnv`` (checkpoint, config or DreamConfig's fields:
    sampling_steps, device, ...)."""
    observation = getattr(dream_kwargs.get("config"), "observation", dream_kwargs.get("observation", "pixels"))
    if observation != "pixels":  # each agent's space is the scene's frames (multi_agent.SplitParallelEnv)
        raise ValueError(f"parallel_env: expected observation='pixels', the frames both agents see, got {observation!r}")
    joint = DiffusionWorldEnv(scene=scene, **dream_kwargs)
    agents = require_open(joint.dream, "parallel_env").agents
    if not agents:
        joint.close()
        raise ValueError(f"scene {scene!r} has one agent; a PettingZoo dream needs a multi-agent scene such as 'duo'")
    limit = scene_info(scene).max_episode_steps if max_cycles is None else max_cycles
    return DreamParallelEnv(joint, agents, f"{scene}_dream_v0", limit)


def env(**kwargs) -> AECEnv:
    """The same dream in PettingZoo's turn-based AEC API."""
    return parallel_to_aec(parallel_env(**kwargs))
