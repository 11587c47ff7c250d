"""Cartpole: Gymnasium's InvertedPendulum-v5 physics, reward and termination, side view.

The camera follows the cart, so the pole fills the frame and its angle is
readable to a few hundredths of a radian at 64x64; a strip of coloured panels
behind the rail, each a different hue, shows where the cart is on the rail.
"""

import mujoco
import numpy as np

from worldenv.scenes.base import (
    MujocoScene,
    add_visual_geom,
    gymnasium_asset,
    set_orthographic_camera,
    use_flat_lighting,
)

FALL_ANGLE = 0.2  # radians; InvertedPendulum-v5 terminates beyond it
VIEW_EXTENT = 1.0  # metres shown: the 0.6 m pole spans most of the frame's height
PANEL_WIDTH = 0.25
RAIL_HALF_LENGTH = 1.0
SETPOINT_PULL = 0.6  # metres of cart error the roaming expert feeds back at most


class CartpoleScene(MujocoScene):
    """Keep a pole upright by pushing its cart along a rail.

    Reward (InvertedPendulum-v5): 1 per step while the pole is within 0.2 rad of
    vertical; the episode terminates when it is not. ``info["state"]["task"]`` is
    ``(cart_x, pole_angle)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}
    frame_skip = 2
    # Noise drops the pole within ten steps, so the expert balances part of the time
    # and episodes last. But the expert's push follows the lean: a model trained on
    # 85 % expert stood its pole up under zero actions, and on 50 % (with strong noise
    # for the rest) still did. Gentle pushes show the pole falling under its weight.
    exploration_mix = {"goal": 0.4, "smooth": 0.2, "uniform": 0.15, "gentle": 0.25}

    def build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec.from_file(str(gymnasium_asset("inverted_pendulum.xml")))
        # Backdrop: panels of evenly spaced hues behind the rail (drawn only).
        positions = np.arange(-RAIL_HALF_LENGTH - 0.5, RAIL_HALF_LENGTH + 0.5 + 1e-9, PANEL_WIDTH)
        for index, x in enumerate(positions):
            hue = index / len(positions)
            add_visual_geom(
                spec.worldbody,
                type=mujoco.mjtGeom.mjGEOM_BOX,
                pos=[x + PANEL_WIDTH / 2, 0.6, 0.25],
                size=[PANEL_WIDTH / 2, 0.01, 0.75],
                rgba=[*_pastel(hue), 1.0],
            )
        spec.geom("cpole").rgba = [0.9, 0.45, 0.1, 1.0]
        spec.geom("cart").rgba = [0.2, 0.2, 0.25, 1.0]
        use_flat_lighting(spec)
        set_orthographic_camera(
            spec.body("cart"),
            pos=[0.0, -2.0, 0.25],
            xyaxes=[1, 0, 0, 0, 0, 1],
            extent=VIEW_EXTENT,
            mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACK,
        )
        return spec

    def reset_task(self) -> None:
        # InvertedPendulum-v5's reset distribution.
        rng = self.np_random
        self.data.qpos[:] = self.model.qpos0 + rng.uniform(-0.01, 0.01, size=self.model.nq)
        self.data.qvel[:] = rng.uniform(-0.01, 0.01, size=self.model.nv)

    def is_terminated(self) -> bool:
        return bool(not np.all(np.isfinite(self.data.qpos)) or abs(self.data.qpos[1]) > FALL_ANGLE)

    def reward(self, action: np.ndarray) -> tuple[float, dict[str, float]]:
        return float(not self.is_terminated()), {}

    def task_state(self) -> np.ndarray:
        return self.data.qpos[:2].copy()

    # Roaming setpoints reach past the rail's end stops, so the data shows the cart hitting
    # a stop and the pole falling from the impact: how a policy that lets its cart wander
    # ends in MuJoCo (docs/experiments/2026-11-29-agents-cartpole.md, "Cartpole").
    setpoint_range = (-1.4 * RAIL_HALF_LENGTH, 1.4 * RAIL_HALF_LENGTH)

    def goal_action(self, setpoint: float | None = None) -> np.ndarray:
        """A balancing controller: state feedback on (x, angle, velocities), holding the
        cart at the rail's middle, or steering it to ``setpoint`` at a steady pace (the cart
        error it feeds back is at most ``SETPOINT_PULL``: a far setpoint taken at once would
        shove the cart out from under its pole)."""
        x, angle = self.data.qpos
        velocity, angular_velocity = self.data.qvel
        # None keeps the original expert exactly, so datasets collected with it reproduce.
        error = x if setpoint is None else np.clip(x - setpoint, -SETPOINT_PULL, SETPOINT_PULL)
        force = 1.0 * error + 10.0 * angle + 1.5 * velocity + 2.0 * angular_velocity
        return np.clip([force / 3.0], -1.0, 1.0).astype(np.float32)

    def steered_action(self, setpoint: float) -> np.ndarray:
        return self.goal_action(setpoint)


def _pastel(hue: float) -> list[float]:
    """A light, desaturated colour of the given hue, so the cart and pole stand out."""
    rgb = np.clip(np.abs((hue * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0 - 3.0) - 1.0, 0.0, 1.0)
    return list(0.55 + 0.35 * rgb)
