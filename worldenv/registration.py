"""Gymnasium registration of every worldenv id (Gymnasium 1.x reads no plugins:
``import worldenv`` or the ``worldenv:`` prefix in ``gym.make`` registers them).

Ground truth: ``worldenv/Reacher-v0`` ... (one per scene). Dreams:
``DiffusionWorld-v0`` (the reacher dream unless ``scene=``/``checkpoint=`` say
otherwise) and ``worldenv/ReacherDream-v0`` ... (one per scene). Each dream has its
scene's time limit: registered with the per-scene ids; for ``DiffusionWorld-v0``, whose
scene is known only once the checkpoint is read, applied by its entry point
(``envs.single.make_dream``). Entry points are strings, so ``import worldenv`` does
not load torch.
"""

import gymnasium

from worldenv.scenes import SCENES

DREAM_ID = "DiffusionWorld-v0"
DREAM_ENTRY_POINT = "worldenv.envs.single:DiffusionWorldEnv"
SCENE_DREAM_ENTRY_POINT = "worldenv.envs.single:make_dream"  # the dream under the time limit of the scene it loads
DREAM_VECTOR_ENTRY_POINT = "worldenv.envs.vector:DiffusionWorldVectorEnv"


def dream_id(scene: str) -> str:
    return f"worldenv/{scene.capitalize()}Dream-v0"


def register_envs() -> None:
    """Register all ids once; re-registering would make Gymnasium warn."""
    # No registered limit for DREAM_ID: make_dream applies the scene's, and the vector env takes it
    # from the scene when make_vec passes none.
    dreams: list[tuple[str, str, dict[str, str], int | None]] = [(DREAM_ID, SCENE_DREAM_ENTRY_POINT, {}, None)]
    dreams += [
        (dream_id(scene.name), DREAM_ENTRY_POINT, {"scene": scene.name}, scene.max_episode_steps) for scene in SCENES.values()
    ]
    for scene in SCENES.values():
        if scene.env_id not in gymnasium.registry:
            gymnasium.register(id=scene.env_id, entry_point=scene.entry_point, max_episode_steps=scene.max_episode_steps)
    for env_id, entry_point, kwargs, limit in dreams:
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=DREAM_VECTOR_ENTRY_POINT,
                max_episode_steps=limit,
                kwargs=kwargs,
            )
