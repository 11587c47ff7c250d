"""The MuJoCo ground-truth scenes: one file each, a shared base in ``base.py``.

``SCENES`` is the single table of the built-in scenes; ``gym:<env>`` names any
Gymnasium MuJoCo env (``gym_scene.py``). Everything that takes a scene name
(collection, training, the dream env) resolves it here, through ``scene_info``, so an
unknown name fails in one place with one message.
"""

import re
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


GYM_PREFIX = "gym:"  # gym_scene.PREFIX, here so that resolving a name needs no mujoco
GYM_ENTRY_POINT = "worldenv.scenes.gym_scene:make_gym_scene"


def directory_name(scene: str) -> str:
    """The name of a scene's data, runs and shipped-bundle directories: a built-in scene's own
    name; for a Gymnasium env (with or without ``gym:``), its id in lower case without
    version, namespace, module or camera (``gym:HalfCheetah-v5@track`` -> ``halfcheetah``)."""
    if scene in SCENES:
        return scene
    name = scene.removeprefix(GYM_PREFIX).partition("@")[0].rpartition(":")[2].rpartition("/")[2]
    return re.sub(r"[^a-z0-9]+", "", re.sub(r"-v\d+$", "", name).lower()) or "env"


def scene_info(name: str) -> SceneInfo:
    """Look a scene up by name, with an error that lists the ones that exist. A ``gym:``
    name is registered with Gymnasium here, on first use in each process (collection's
    workers, the agents' envs), so that ``env_id`` can be made like a built-in scene's."""
    if isinstance(name, str) and name.startswith(GYM_PREFIX) and len(name) > len(GYM_PREFIX):
        return _gym_scene_info(name)
    try:
        return SCENES[name]
    except KeyError:
        raise ValueError(
            f"unknown scene {name!r}; expected one of {sorted(SCENES)} or {GYM_PREFIX}<Gymnasium MuJoCo env id>"
        ) from None


def _gym_scene_info(name: str) -> SceneInfo:
    from worldenv.scenes.gym_scene import episode_steps

    target = name.removeprefix(GYM_PREFIX)
    # A Gymnasium id of letters, digits, '_', '.' and '-' only, with a version: the
    # target's own may hold a namespace ('/') or a module (':'), and may have no version.
    env_id = "worldenv/Gym_" + "".join(c if c.isalnum() or c in "_.-" else "_" for c in target)
    env_id += "" if re.search(r"-v\d+$", env_id) else "-v0"
    info = SceneInfo(name, env_id, GYM_ENTRY_POINT, episode_steps(target))
    if env_id not in gymnasium.registry:
        gymnasium.register(
            env_id, entry_point=GYM_ENTRY_POINT, max_episode_steps=info.max_episode_steps, kwargs={"target": target}
        )
    elif gymnasium.registry[env_id].kwargs.get("target") != target:
        raise ValueError(f"scene {name!r}: its Gymnasium id {env_id} already names {gymnasium.registry[env_id].kwargs}")
    return info


def make_scene(name: str, **kwargs) -> gymnasium.Env:
    """``gym.make`` the ground-truth env of a scene by its short name."""
    import worldenv  # noqa: F401  (registers the ids)

    return gymnasium.make(scene_info(name).env_id, **kwargs)


def scene_class(name: str) -> "type[MujocoScene]":
    """A scene's class (its entry point), for what it declares without building it."""
    from gymnasium.envs.registration import load_env_creator

    from worldenv.scenes.base import MujocoScene

    info = scene_info(name)
    if info.entry_point == GYM_ENTRY_POINT:
        from worldenv.scenes.gym_scene import gym_scene_class

        return gym_scene_class(name.removeprefix(GYM_PREFIX))
    creator: object = load_env_creator(info.entry_point)
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
