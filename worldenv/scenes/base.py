"""Plumbing shared by every ground-truth scene: compile an ``MjSpec``, step it,
render it offscreen through one named camera, and report the true state.

A scene subclass says only what is particular to it (its model, reset
distribution, reward, termination and an expert controller), in the spirit of
Gymnasium's ``envs/mujoco``: one file per scene, one base for the plumbing.
"""

import os
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
from gymnasium import spaces

from worldenv.validation import check_action, check_image_size

CAMERA = "view"


def gymnasium_asset(filename: str) -> Path:
    """Path of an MJCF file shipped with Gymnasium's MuJoCo envs (the physics we reuse)."""
    import gymnasium.envs.mujoco as gym_mujoco

    return Path(gym_mujoco.__file__).parent / "assets" / filename


def add_visual_geom(body: mujoco.MjsBody, **attributes) -> mujoco.MjsGeom:
    """Add a geom that is drawn but has no mass and takes part in no contact.

    The cameras see 64x64 pixels, where the stock geoms of the Gymnasium models
    (a 9 mm target, 1 cm links) are one or two pixels wide; these geoms make the
    task visible without changing the dynamics.
    """
    return body.add_geom(contype=0, conaffinity=0, mass=0.0, **attributes)


def use_flat_lighting(spec: mujoco.MjSpec, ambient: float = 0.45, diffuse: float = 0.6) -> None:
    """Light from the camera with a strong ambient term: even, bright colours at any
    pose, which a 64x64 frame needs more than it needs shading."""
    headlight = spec.visual.headlight
    headlight.ambient = [ambient] * 3
    headlight.diffuse = [diffuse] * 3
    headlight.specular = [0.0] * 3


def set_orthographic_camera(
    body: mujoco.MjsBody, pos, xyaxes, extent: float, mode=mujoco.mjtCamLight.mjCAMLIGHT_FIXED
) -> mujoco.MjsCamera:
    """Add the scene camera: orthographic, so size on screen does not depend on depth.

    ``extent`` is the height of the view in metres; ``xyaxes`` gives the camera's
    right and up directions (it looks along -x cross y).
    """
    camera = body.add_camera(name=CAMERA, pos=pos, mode=mode)
    camera.proj = mujoco.mjtProjection.mjPROJ_ORTHOGRAPHIC
    camera.fovy = extent
    x_axis, y_axis = np.asarray(xyaxes[:3], float), np.asarray(xyaxes[3:], float)
    camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    camera.alt.xyaxes = np.concatenate([x_axis, y_axis])
    return camera


class MujocoScene(gymnasium.Env[np.ndarray, np.ndarray]):
    """A MuJoCo scene observed as uint8 ``(height, width, 3)`` frames.

    Actions are ``Box(-1, 1)``; ``info["state"]`` holds the true ``qpos``,
    ``qvel`` and the scene's task vector (``task_state``), which data collection
    stores and the state probe learns to read from frames.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}
    frame_skip = 1
    # Share of each exploration policy in data collection's default "mix".
    exploration_mix = {"uniform": 0.2, "smooth": 0.4, "goal": 0.4}
    # A multi-agent scene names its agents; each one's reward is ``info[f"reward_{agent}"]``,
    # the env's reward is their sum. Data collection stores the per-agent rewards, so the
    # world model learns one reward head per agent. Empty for single-agent scenes.
    agents: tuple[str, ...] = ()
    # What the frames are drawn through: the model's camera of that name (a scene wrapping an
    # env it did not build may name another, or pass a free camera).
    camera: "str | mujoco.MjvCamera" = CAMERA
    # Whether goal_action works: a Gymnasium env's scene has no expert of its own.
    has_expert = True
    # Narrower than gymnasium.Env's Space: every scene's spaces are Boxes (set in __init__).
    action_space: spaces.Box
    observation_space: spaces.Box

    def __init__(self, render_mode: str | None = "rgb_array", width: int = 64, height: int = 64):
        name = type(self).__name__
        if render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"{name}: expected render_mode in {self.metadata['render_modes']}, got {render_mode!r}")
        check_image_size(width, height, name)
        self.render_mode = render_mode
        self.width, self.height = width, height
        self.model = self.build_spec().compile()
        self.data = mujoco.MjData(self.model)
        fps = 1.0 / (self.model.opt.timestep * self.frame_skip)
        if round(fps) != self.metadata["render_fps"]:
            raise AssertionError(f"{name}: render_fps should be {fps:g}, the control rate")
        self._prepare_rendering()
        self.action_space = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self.observation_space = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self._renderer: mujoco.Renderer | None = None
        self._frame: np.ndarray | None = None

    # ---- what a scene defines ------------------------------------------------
    def build_spec(self) -> mujoco.MjSpec:
        """The model, with a camera named ``CAMERA``."""
        raise NotImplementedError

    def reset_task(self) -> None:
        """Draw the initial state (and task) from ``self.np_random`` into ``self.data``."""
        raise NotImplementedError

    def reward(self, action: np.ndarray) -> tuple[float, dict[str, float]]:
        """The reward after a step, and its terms (reported in ``info``)."""
        raise NotImplementedError

    def task_state(self) -> np.ndarray:
        """Task-relevant positions (what the state probe must read off a frame)."""
        raise NotImplementedError

    def goal_action(self) -> np.ndarray:
        """An expert's action in the current state, for goal-directed exploration."""
        raise NotImplementedError

    # Where a scene's expert can be steered (``steered_action(setpoint)``) by the ``roam``
    # exploration policy; None where it cannot.
    setpoint_range: tuple[float, float] | None = None

    def steered_action(self, setpoint: float) -> np.ndarray:
        """The expert's action steering toward ``setpoint`` (in ``setpoint_range``)."""
        raise NotImplementedError(f"{type(self).__name__} has no setpoint_range: its expert cannot be steered")

    def is_terminated(self) -> bool:
        return False

    @property
    def action_dim(self) -> int:
        return self.model.nu

    def apply_action(self, action: np.ndarray) -> None:
        """Map ``[-1, 1]`` to each actuator's ``ctrlrange`` and advance the physics."""
        low, high = self.model.actuator_ctrlrange.T
        self.data.ctrl[:] = low + (action + 1.0) * 0.5 * (high - low)
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        # mj_step leaves positions derived from qpos (xpos, camera poses) one
        # substep behind; recompute them so frame, state and reward agree.
        mujoco.mj_forward(self.model, self.data)

    # ---- the Gymnasium API -----------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.reset_task()
        mujoco.mj_forward(self.model, self.data)
        return self._observe(), self._info({})

    def step(self, action):
        action = check_action(action, self.action_space.low, self.action_space.high, type(self).__name__)
        self.apply_action(action)
        reward, terms = self.reward(action)
        terminated = self.is_terminated()
        return self._observe(), float(reward), bool(terminated), False, self._info(terms)

    def render(self) -> np.ndarray:
        if self._frame is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before render()")
        return self._frame.copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def state(self) -> dict[str, np.ndarray]:
        return {
            "qpos": self.data.qpos.copy(),
            "qvel": self.data.qvel.copy(),
            "task": np.asarray(self.task_state(), dtype=np.float64),
        }

    # ---- plumbing --------------------------------------------------------------
    def _prepare_rendering(self) -> None:
        # Shadows and reflections are rasterized in software on CPU machines and
        # cost 3-4x the frame time; the scenes are lit so they are not needed.
        self.model.light_castshadow[:] = 0
        self.model.mat_reflectance[:] = 0
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.height)

    def _observe(self) -> np.ndarray:
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
            except mujoco.FatalError as error:
                raise RuntimeError(
                    f"MuJoCo could not create an offscreen OpenGL context ({error}). MUJOCO_GL is "
                    f"{os.environ.get('MUJOCO_GL')!r}; MuJoCo reads it when first imported, so set "
                    "MUJOCO_GL=egl in the environment or import worldenv before mujoco."
                ) from error
        self._renderer.update_scene(self.data, camera=self.camera)
        self._frame = self._renderer.render()
        return self._frame

    def _info(self, terms: dict[str, float]) -> dict:
        return {"state": self.state(), **terms}
