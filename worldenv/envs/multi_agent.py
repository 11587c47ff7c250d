"""The multi-agent dream as PettingZoo envs: ``worldenv.envs.parallel_env(scene="duo")``.

Each agent sends its part of the joint action and gets its own reward from the
model's per-agent reward heads, exactly as in the ground truth's
``worldenv.scenes.duo.parallel_env()`` (both are ``multi_agent.SplitParallelEnv``).
"""

from pettingzoo import AECEnv
from pettingzoo.utils.conversions import parallel_to_aec

from worldenv.envs.single import DiffusionWorldEnv
from worldenv.multi_agent import SplitParallelEnv
from worldenv.scenes import scene_info


def parallel_env(scene: str = "duo", max_cycles: int | None = None, **dream_kwargs) -> SplitParallelEnv:
    """``max_cycles``: steps before every agent is truncated (the scene's time limit by default);
    ``dream_kwargs``: as for ``DiffusionWorldEnv`` (checkpoint, sampling_steps, device, ...)."""
    joint = DiffusionWorldEnv(scene=scene, **dream_kwargs)
    if not joint.dream.agents:
        joint.close()
        raise ValueError(f"scene {scene!r} has one agent; a PettingZoo dream needs a multi-agent scene such as 'duo'")
    limit = scene_info(scene).max_episode_steps if max_cycles is None else max_cycles
    return SplitParallelEnv(joint, joint.dream.agents, f"{scene}_dream_v0", limit)


def env(**kwargs) -> AECEnv:
    """The same dream in PettingZoo's turn-based AEC API."""
    return parallel_to_aec(parallel_env(**kwargs))
