"""Reacher: Gymnasium's Reacher-v5 physics and reward, seen from above.

The stock model is kept as it is; only drawn-not-simulated geoms are added, so
that at 64x64 the target is a disc of about five pixels instead of a one-pixel
dot and the links are as wide as the fingertip.
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

LINK_LENGTHS = (0.1, 0.11)  # shoulder->elbow, elbow->fingertip (reacher.xml)
VIEW_EXTENT = 0.47  # metres shown; the fingertip reaches 0.21 m and targets lie within 0.2 m


class ReacherScene(MujocoScene):
    """Two-link arm moving its fingertip (green) to a target (red), top-down.

    Reward (Reacher-v5): ``-reward_dist_weight * |fingertip - target|
    - reward_control_weight * |action|^2``. ``info["state"]["task"]`` is
    ``(fingertip_x, fingertip_y, target_x, target_y)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}
    frame_skip = 2
    # The motors (gear 200) against damping 1 spin the arm up to ~200 rad/s, and a
    # teacher trained on correlated noise (40 % of the first dataset) learned neither
    # fast arms nor the action: strong smooth noise turned the shoulder 0.44 rad per
    # frame at the median (1.5 at p90), which 64x64 frames at 50 Hz alias, and any
    # correlated noise lets the model guess an action from the frames before it
    # instead of reading it (the cartpole's lesson too). White noise of full and of
    # small amplitude is unpredictable and keeps the shoulder under 0.2 rad per frame
    # (p90); the expert adds purposeful reaches.
    exploration_mix = {"uniform": 0.35, "jitter": 0.3, "goal": 0.35}

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        width: int = 64,
        height: int = 64,
        reward_dist_weight: float = 1.0,
        reward_control_weight: float = 1.0,
    ):
        self.reward_dist_weight = reward_dist_weight
        self.reward_control_weight = reward_control_weight
        super().__init__(render_mode, width, height)

    def build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec.from_file(str(gymnasium_asset("reacher.xml")))
        link_colour, target_colour = [0.0, 0.35, 0.7, 1.0], [1.0, 0.1, 0.1, 1.0]
        for body_name, link in (("body0", "link0"), ("body1", "link1")):
            add_visual_geom(
                spec.body(body_name),
                type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                fromto=spec.geom(link).fromto,
                size=[0.013, 0, 0],
                rgba=link_colour,
            )
        add_visual_geom(
            spec.body("fingertip"),
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[0.02, 0, 0],
            pos=[0, 0, 0.02],
            rgba=[0.1, 0.8, 0.2, 1.0],
        )
        # A flat disc under the arm: large enough to see, never hiding the fingertip.
        add_visual_geom(
            spec.body("target"),
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[0.026, 0.001, 0],
            pos=[0, 0, -0.008],
            rgba=target_colour,
        )
        spec.geom("ground").rgba = [0.95, 0.95, 0.95, 1.0]
        use_flat_lighting(spec)
        set_orthographic_camera(spec.worldbody, pos=[0, 0, 1.0], xyaxes=[1, 0, 0, 0, 1, 0], extent=VIEW_EXTENT)
        return spec

    def reset_task(self) -> None:
        # Reacher-v5's reset distribution.
        rng = self.np_random
        qpos = self.model.qpos0 + rng.uniform(-0.1, 0.1, size=self.model.nq)
        while True:
            goal = rng.uniform(-0.2, 0.2, size=2)
            if np.linalg.norm(goal) < 0.2:
                break
        qpos[-2:] = goal
        qvel = rng.uniform(-0.005, 0.005, size=self.model.nv)
        qvel[-2:] = 0.0
        self.data.qpos[:], self.data.qvel[:] = qpos, qvel

    def _fingertip_to_target(self) -> np.ndarray:
        return self.data.body("fingertip").xpos[:2] - self.data.body("target").xpos[:2]

    def reward(self, action: np.ndarray) -> tuple[float, dict[str, float]]:
        reward_dist = -float(np.linalg.norm(self._fingertip_to_target())) * self.reward_dist_weight
        reward_ctrl = -float(np.square(action).sum()) * self.reward_control_weight
        return reward_dist + reward_ctrl, {"reward_dist": reward_dist, "reward_ctrl": reward_ctrl}

    def task_state(self) -> np.ndarray:
        return np.concatenate([self.data.body("fingertip").xpos[:2], self.data.body("target").xpos[:2]])

    def goal_action(self) -> np.ndarray:
        """Analytic two-link inverse kinematics, then a PD controller on the joints."""
        shoulder, elbow = self.data.qpos[:2]
        target = self.data.body("target").xpos[:2]
        l1, l2 = LINK_LENGTHS
        distance = np.clip(np.linalg.norm(target), 1e-6, l1 + l2 - 1e-6)
        cos_elbow = np.clip((distance**2 - l1**2 - l2**2) / (2 * l1 * l2), -1.0, 1.0)
        # Of the two solutions (elbow left or right), take the nearer one.
        elbow_goal = np.arccos(cos_elbow) * (1.0 if elbow >= 0 else -1.0)
        shoulder_goal = np.arctan2(target[1], target[0]) - np.arctan2(l2 * np.sin(elbow_goal), l1 + l2 * np.cos(elbow_goal))
        error = np.array([shoulder_goal - shoulder, elbow_goal - elbow])
        error = (error + np.pi) % (2 * np.pi) - np.pi  # the shoulder is unbounded: turn the short way
        torque = 2.0 * error - 0.3 * self.data.qvel[:2]
        return np.clip(torque, -1.0, 1.0).astype(np.float32)
