"""Each scene's controls on the page: which keys push which action dimension and how
hard, which gamepad axis drives each dimension, and (reacher) the mouse as a target that
the scene's goal policy follows. The page builds its input handling and its help text
from ``Controls.record()``, so the two never disagree.

Key codes are ``KeyboardEvent.code`` names: the key's place, whatever the layout.
"""

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Key:
    codes: tuple[str, ...]
    dim: int  # action dimension it pushes
    value: float  # added to that dimension while held
    label: str


@dataclass(frozen=True)
class Controls:
    keys: tuple[Key, ...]
    gamepad: tuple[tuple[int, float], ...]  # per action dimension: (axis index, gain; negative flips it)
    mouse_goal: bool = False  # the mouse sets a target for the goal policy (the scene's goal_action)

    def record(self) -> dict:
        return asdict(self)


def _pair(codes: tuple[str, str], dim: int, value: float, labels: tuple[str, str]) -> tuple[Key, Key]:
    """The keys that push one dimension each way."""
    return Key((codes[0],), dim, value, labels[0]), Key((codes[1],), dim, -value, labels[1])


# A held torque of 0.2 turns the reacher's shoulder about 0.6 rad in five frames (0.1 s),
# which the served dream follows (docs/play.md); a full torque spins the arm faster than 64x64
# frames at 50 Hz can show.
REACHER_TORQUE = 0.2
CONTROLS: dict[str, Controls] = {
    "reacher": Controls(
        keys=(
            *_pair(("ArrowRight", "ArrowLeft"), 0, REACHER_TORQUE, ("shoulder +", "shoulder -")),
            *_pair(("KeyD", "KeyA"), 0, REACHER_TORQUE, ("shoulder +", "shoulder -")),
            *_pair(("ArrowUp", "ArrowDown"), 1, REACHER_TORQUE, ("elbow +", "elbow -")),
            *_pair(("KeyW", "KeyS"), 1, REACHER_TORQUE, ("elbow +", "elbow -")),
        ),
        gamepad=((0, 0.5), (1, -0.5)),
        mouse_goal=True,
    ),
    "cartpole": Controls(
        keys=(
            *_pair(("ArrowRight", "ArrowLeft"), 0, 0.6, ("push right", "push left")),
            *_pair(("KeyD", "KeyA"), 0, 0.6, ("push right", "push left")),
        ),
        gamepad=((0, 1.0),),
    ),
    # The panorama's action is (turn, step); a positive turn is to the left.
    "panorama": Controls(
        keys=(
            *_pair(("ArrowLeft", "ArrowRight"), 0, 1.0, ("turn left", "turn right")),
            *_pair(("KeyA", "KeyD"), 0, 1.0, ("turn left", "turn right")),
            *_pair(("ArrowUp", "ArrowDown"), 1, 1.0, ("step forward", "step back")),
            *_pair(("KeyW", "KeyS"), 1, 1.0, ("step forward", "step back")),
        ),
        gamepad=((0, -1.0), (1, -1.0)),
    ),
    # Two players on one keyboard: red (agent 0) on WASD, blue (agent 1) on the arrows; each
    # pushes its agent along x (right) and y (up) of the top-down view.
    "duo": Controls(
        keys=(
            *_pair(("KeyD", "KeyA"), 0, 0.6, ("red right", "red left")),
            *_pair(("KeyW", "KeyS"), 1, 0.6, ("red up", "red down")),
            *_pair(("ArrowRight", "ArrowLeft"), 2, 0.6, ("blue right", "blue left")),
            *_pair(("ArrowUp", "ArrowDown"), 3, 0.6, ("blue up", "blue down")),
        ),
        gamepad=((0, 1.0), (1, -1.0), (2, 1.0), (3, -1.0)),
    ),
}


def controls(scene: str) -> Controls:
    try:
        return CONTROLS[scene]
    except KeyError:
        raise ValueError(f"worldenv play: no controls for scene {scene!r}; expected one of {sorted(CONTROLS)}") from None


def goal_toward(scene, point: tuple[float, float]) -> np.ndarray:
    """The reacher's goal policy (``ReacherScene.goal_action``: inverse kinematics, then PD)
    steering to ``point`` (u, v of the frame from its top left) instead of the scene's target.
    ``goal_action`` reads the target body's position; it is borrowed for this one call and
    put back, so MuJoCo's state, and its frames, never see the pointer."""
    from worldenv.scenes.reacher import VIEW_EXTENT  # the orthographic view: VIEW_EXTENT metres square, centred

    u, v = point
    target = scene.data.body("target").xpos
    kept = target.copy()
    target[:2] = ((u - 0.5) * VIEW_EXTENT, (0.5 - v) * VIEW_EXTENT)
    try:
        return scene.goal_action()
    finally:
        target[:] = kept
