"""The MuJoCo ground-truth scenes: one file each, a shared base in ``base.py``.

``SCENES`` is the single table of what exists; everything that takes a scene name
(collection, training, the dream env) resolves it here, so an unknown name fails
in one place with one message.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gymnasium

if TYPE_CHECKING:  # base.py imports mujoco; a scene name resolves without it
    from worldenv.scenes.base import MujocoScene


@dataclass(frozen=True)
class SceneInfo:
    name: str
    env_id: str
    entry_point: str
    max_episode_steps: int


SCENES: dict[str, SceneInfo] = {
    info.name: info
    for info in (
        # Reacher-v5's own episode length, so returns compare with the literature.
        SceneInfo("reacher", "worldenv/Reacher-v0", "worldenv.scenes.reacher:ReacherScene", 50),
        SceneInfo("cartpole", "worldenv/Cartpole-v0", "worldenv.scenes.cartpole:CartpoleScene", 1000),
        SceneInfo("panorama", "worldenv/Panorama-v0", "worldenv.scenes.panorama:PanoramaScene", 200),
        SceneInfo("duo", "worldenv/Duo-v0", "worldenv.scenes.duo:DuoScene", 200),
    )
}


def scene_info(name: str) -> SceneInfo:
    """Look a scene up by name, with an error that lists the ones that exist."""
    try:
        return SCENES[name]
    except KeyError:
        raise ValueError(f"unknown scene {name!r}; expected one of {sorted(SCENES)}") from None


def make_scene(name: str, **kwargs) -> gymnasium.Env:
    """``gym.make`` the ground-truth env of a scene by its short name."""
    import worldenv  # noqa: F401  (registers the ids)

    return gymnasium.make(scene_info(name).env_id, **kwargs)


def scene_class(name: str) -> "type[MujocoScene]":
    """A scene's class (its entry point), for what it declares without building it."""
    from gymnasium.envs.registration import load_env_creator

    from worldenv.scenes.base import MujocoScene

    creator: object = load_env_creator(scene_info(name).entry_point)
    if isinstance(creator, type) and issubclass(creator, MujocoScene):
        return creator
    raise TypeError(f"scene {name!r}: expected its entry point to be a MujocoScene class, got {creator!r}")


def unwrapped_scene(env: gymnasium.Env) -> "MujocoScene":
    """The MuJoCo scene under ``env``'s wrappers (an env ``make_scene`` made)."""
    from worldenv.scenes.base import MujocoScene

    scene = env.unwrapped
    if not isinstance(scene, MujocoScene):
        raise TypeError(f"expected an env of a MuJoCo scene, got {type(scene).__name__}")
    return scene
