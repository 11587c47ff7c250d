"""Gymnasium registration of every worldenv id (Gymnasium 1.x reads no plugins:
``import worldenv`` or the ``worldenv:`` prefix in ``gym.make`` registers them)."""

import gymnasium

from worldenv.scenes import SCENES


def register_envs() -> None:
    """Register all ids once; re-registering would make Gymnasium warn."""
    for scene in SCENES.values():
        if scene.env_id not in gymnasium.registry:
            gymnasium.register(
                id=scene.env_id,
                entry_point=scene.entry_point,
                max_episode_steps=scene.max_episode_steps,
            )
