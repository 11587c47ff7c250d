"""Any Gymnasium MuJoCo env as a ground-truth scene: ``scene="gym:HalfCheetah-v5"``.

The name after ``gym:`` is what ``gymnasium.make`` takes (a registered id, or
``module:Id-v0``, which imports ``module`` first so that it registers its ids), or
``module:callable``, a constructor of the user's own env; ``@camera`` after it picks
the camera (``gym:HalfCheetah-v5@track``; see ``GymScene``). The env keeps its own
physics, reset distribution, reward and termination; the scene adds what every
worldenv scene has: frames of the chosen size from one camera, actions in
``[-1, 1]^A`` mapped to the env's ``Box`` bounds, and the true state
(``qpos``, ``qvel`` from the MuJoCo data) in ``info["state"]``.

Only what a world model of worldenv can learn is accepted: continuous (``Box``)
actions with finite bounds and an env simulated by MuJoCo (its unwrapped env has
``model`` and ``data``, as ``gymnasium.envs.mujoco.MujocoEnv`` has, or a dm_control
``physics``, as Shimmy's DMC envs have). Anything else is refused with the reason.
"""

import importlib
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium import spaces

from worldenv.scenes.base import MujocoScene
from worldenv.validation import check_action, check_image_size

logger = logging.getLogger(__name__)

PREFIX = "gym:"
# A constructor's env has no registered time limit; this one is Gymnasium MuJoCo's.
DEFAULT_EPISODE_STEPS = 1000
AUTO_CAMERA, DEFAULT_VIEW = "auto", "default"
CAMERA_SEPARATOR = "@"  # gym:HalfCheetah-v5@track: a camera of the model by name, or auto or default


def make_inner(target: str) -> gymnasium.Env:
    """The env that ``target`` (a scene name without ``gym:``) names, without Gymnasium's
    wrappers: the scene applies its own time limit, and renders itself."""
    module, _, attribute = target.rpartition(":")
    if module and attribute not in gymnasium.registry:
        importlib.import_module(module)  # its import may register the id (gymnasium's "module:Id" form)
        if attribute not in gymnasium.registry:
            constructor = getattr(importlib.import_module(module), attribute, None)
            if not callable(constructor):
                raise ValueError(
                    f"gym:{target}: expected {module} to register the Gymnasium id {attribute!r} or "
                    f"define a constructor of that name"
                )
            env = constructor()
            if not isinstance(env, gymnasium.Env):
                raise TypeError(f"gym:{target}: expected the constructor to return a gymnasium.Env, got {type(env).__name__}")
            return env.unwrapped
    try:
        return gymnasium.make(attribute if module else target).unwrapped
    except gymnasium.error.Error as error:
        raise ValueError(f"gym:{target}: Gymnasium cannot make it ({error})") from None


def episode_steps(target: str) -> int:
    """The env's registered time limit (a constructor's: Gymnasium MuJoCo's 1000)."""
    module, _, attribute = target.partition(CAMERA_SEPARATOR)[0].rpartition(":")
    if module and attribute not in gymnasium.registry:
        importlib.import_module(module)  # which may register it
    if attribute in gymnasium.registry:
        limit = gymnasium.registry[attribute].max_episode_steps
        return int(limit) if limit else DEFAULT_EPISODE_STEPS
    return DEFAULT_EPISODE_STEPS


def mujoco_handles(env: gymnasium.Env, name: str) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """The ``MjModel`` and ``MjData`` an env simulates, or the reason it has none."""
    model, data = getattr(env, "model", None), getattr(env, "data", None)
    physics = getattr(env, "physics", None)  # dm_control (Shimmy's DmControlCompatibilityV0)
    if physics is not None and not isinstance(model, mujoco.MjModel):
        model, data = getattr(physics.model, "ptr", None), getattr(physics.data, "ptr", None)
    if not isinstance(model, mujoco.MjModel) or not isinstance(data, mujoco.MjData):
        raise ValueError(
            f"{name}: not a MuJoCo env ({type(env).__name__}); expected its unwrapped env to have `model` "
            "(mujoco.MjModel) and `data` (mujoco.MjData), as gymnasium.envs.mujoco.MujocoEnv has: the scene "
            "reads the true state (qpos, qvel) there and renders the frames from it"
        )
    return model, data


def check_action_space(space: spaces.Space, name: str) -> spaces.Box:
    """A ``Box`` of finite bounds and one axis, the only actions a world model here conditions on."""
    if not isinstance(space, spaces.Box):
        raise ValueError(
            f"{name}: expected a continuous (Box) action space, got {space}; the world model conditions on "
            "actions in [-1, 1]^A, and discrete actions would need an embedding it does not have"
        )
    if len(space.shape) != 1 or not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"{name}: expected a 1-D Box action space with finite bounds (mapped to [-1, 1]), got {space}")
    return space


class GymScene(MujocoScene):
    """A Gymnasium MuJoCo env seen through one camera (``camera``): ``"auto"`` is the model's
    ``track`` camera where it has one (Gymnasium's locomotion models do: it follows the
    torso), else the env's own default view; ``"default"`` that view; any other string a
    camera of the model by name.

    ``info["state"]["task"]`` is the part of ``qpos`` a frame shows: all of it, less the
    root's horizontal translation where the camera follows it (a tracking camera shows
    the torso's height and pitch, not how far it has run). ``info`` also holds the env's
    own info, and ``env_observation`` its own observation (what an SB3 expert acts on).
    """

    # White noise makes each action readable from the frames; correlated noise and held
    # pushes (often at a bound) carry a body far from its start, as a policy does.
    # No "goal": a Gymnasium env has no expert unless collection gives one (CollectConfig.expert).
    exploration_mix = {"uniform": 0.3, "jitter": 0.2, "smooth": 0.3, "push": 0.2}
    has_expert = False
    # Set on the per-env subclass (``gym_scene_class``): the env's name after "gym:", and the
    # camera named after '@' in the scene's name (the name is all that reaches collection's
    # workers, the dream env and evaluation, so the camera is part of it).
    target: str = ""
    view: str = AUTO_CAMERA

    def __init__(self, render_mode: str | None = "rgb_array", width: int = 64, height: int = 64, camera: str | None = None):
        name = PREFIX + self.target
        camera = camera or self.view
        if render_mode != "rgb_array":
            raise ValueError(f"{name}: expected render_mode 'rgb_array', got {render_mode!r}")
        check_image_size(width, height, name)
        self.render_mode, self.width, self.height = render_mode, width, height
        self.env = make_inner(self.target)
        self.env_action_space = check_action_space(self.env.action_space, name)
        self.model, self.data = mujoco_handles(self.env, name)
        self.camera = self._camera(camera, name)
        self._prepare_rendering()
        # Light from the camera, strongly ambient (the built-in scenes' lighting): the models'
        # own dim lights leave a 64x64 frame's thin limbs a pixel of near-black.
        self.model.vis.headlight.ambient[:], self.model.vis.headlight.diffuse[:] = 0.45, 0.6
        self.action_space = spaces.Box(-1.0, 1.0, self.env_action_space.shape, np.float32)
        self.observation_space = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self._renderer: mujoco.Renderer | None = None
        self._frame: np.ndarray | None = None
        self.env_observation: Any = None
        self.visible = visible_positions(self.model, tracking=self._tracks())
        self.expert: Callable[[GymScene], np.ndarray] | None = None

    @property
    def action_dim(self) -> int:
        return int(self.env_action_space.shape[0])

    # ---- actions: [-1, 1]^A <-> the env's Box -----------------------------------
    def to_env_action(self, action: np.ndarray) -> np.ndarray:
        low, high = self.env_action_space.low, self.env_action_space.high
        return (low + (np.asarray(action, np.float64) + 1.0) * 0.5 * (high - low)).astype(self.env_action_space.dtype)

    def to_model_action(self, env_action: np.ndarray) -> np.ndarray:
        low, high = self.env_action_space.low, self.env_action_space.high
        action = 2.0 * (np.asarray(env_action, np.float64) - low) / (high - low) - 1.0
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # ---- the Gymnasium API ---------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        gymnasium.Env.reset(self, seed=seed)
        self.env_observation, info = self.env.reset(seed=seed, options=options)
        return self._observe(), {**info, **self._info({})}

    def step(self, action):
        action = check_action(action, self.action_space.low, self.action_space.high, PREFIX + self.target)
        self.env_observation, reward, terminated, truncated, info = self.env.step(self.to_env_action(action))
        return self._observe(), float(reward), bool(terminated), bool(truncated), {**info, **self._info({})}

    def close(self) -> None:
        super().close()
        self.env.close()

    def task_state(self) -> np.ndarray:
        return self.data.qpos[self.visible].copy()

    def goal_action(self) -> np.ndarray:
        if self.expert is None:
            raise ValueError(
                f"{PREFIX}{self.target}: the 'goal' policy acts as an expert, and a Gymnasium env has none; "
                "expected collect.expert (an SB3 policy.zip acting on the env's observations)"
            )
        return self.expert(self)

    # ---- the camera -----------------------------------------------------------------
    def _camera(self, camera: str, name: str) -> "str | mujoco.MjvCamera":
        if camera == AUTO_CAMERA:
            camera = following_camera(self.model) or DEFAULT_VIEW
        if camera != DEFAULT_VIEW:
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
                cameras = [self.model.camera(i).name for i in range(self.model.ncam)]
                raise ValueError(f"{name}: no camera {camera!r}; expected {AUTO_CAMERA!r}, {DEFAULT_VIEW!r} or one of {cameras}")
            return camera
        # Gymnasium's default_camera_config suits a 480-pixel viewer: at 64x64 an inverted
        # double pendulum is a few pixels in a corner. So the model is framed from the side
        # (as the models' track cameras look), its geoms at the initial pose filling 80 % of
        # the frame, floors aside; and Gymnasium's trackbodyid, if any, is followed.
        return framed_view(
            self.model,
            int((getattr(getattr(self.env, "mujoco_renderer", None), "default_cam_config", None) or {}).get("trackbodyid", 0)),
        )

    def _tracks(self) -> bool:
        if isinstance(self.camera, mujoco.MjvCamera):
            return self.camera.type == mujoco.mjtCamera.mjCAMERA_TRACKING
        mode = self.model.cam_mode[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera)]
        return mode != mujoco.mjtCamLight.mjCAMLIGHT_FIXED


def following_camera(model: mujoco.MjModel) -> str | None:
    """The model's camera that follows its body: ``track`` (Gymnasium's locomotion models), else
    the first that tracks a body (dm_control's cheetah ``side``), else None."""
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0:
        return "track"
    following = (mujoco.mjtCamLight.mjCAMLIGHT_TRACK, mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
    return next((model.camera(i).name for i in range(model.ncam) if model.cam_mode[i] in following), None)


def framed_view(model: mujoco.MjModel, track_body: int = 0, fill: float = 0.8) -> mujoco.MjvCamera:
    """A camera looking along +y, slightly down, at the box around the model's geoms in its
    initial pose (planes aside), at the distance where the box fills ``fill`` of the frame."""
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    solid = model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE
    radius = model.geom_rbound[solid][:, None]
    low, high = (data.geom_xpos[solid] - radius).min(0), (data.geom_xpos[solid] + radius).max(0)
    view = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, view)
    view.lookat[:] = (low + high) / 2
    view.azimuth, view.elevation = 90.0, -10.0
    half_view = np.tan(np.deg2rad(model.vis.global_.fovy) / 2)
    view.distance = max(high[0] - low[0], high[2] - low[2]) / (2 * fill * half_view) + (high[1] - low[1]) / 2
    if track_body > 0:
        view.type, view.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, track_body
    return view


def visible_positions(model: mujoco.MjModel, tracking: bool) -> np.ndarray:
    """Indices of ``qpos`` a frame shows: all but, under a tracking camera, the horizontal
    translation of root joints (slide joints along a horizontal axis, a free joint's x and y)."""
    hidden: list[int] = []
    for joint in range(model.njnt if tracking else 0):
        if model.body_parentid[model.jnt_bodyid[joint]] != 0:  # only the root body's joints move the camera
            continue
        address, kind = model.jnt_qposadr[joint], model.jnt_type[joint]
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            hidden += [address, address + 1]
        elif kind == mujoco.mjtJoint.mjJNT_SLIDE and abs(model.jnt_axis[joint][2]) < 0.5:
            hidden.append(address)
    return np.array([i for i in range(model.nq) if i not in hidden], int)


@cache
def gym_scene_class(target: str) -> type[GymScene]:
    """The scene class of one env: ``GymScene`` with the env's name and control rate, which
    code that reads a scene's class (``scene_class``, e.g. ``worldenv play``'s frame rate)
    needs before building one. Making the env once here also refuses what cannot work."""
    target, _, view = target.partition(CAMERA_SEPARATOR)
    env = make_inner(target)
    try:
        check_action_space(env.action_space, PREFIX + target)
        model, _ = mujoco_handles(env, PREFIX + target)
        dt = float(getattr(env, "dt", model.opt.timestep * getattr(env, "frame_skip", 1)))
    finally:
        env.close()
    metadata = {"render_modes": ["rgb_array"], "render_fps": max(1, round(1.0 / dt))}
    name = "Gym" + "".join(c for c in target.rpartition(":")[2] if c.isalnum()) + "Scene"
    attributes = {"target": target, "view": view or AUTO_CAMERA, "metadata": metadata, "__module__": __name__}
    return type(name, (GymScene,), attributes)


def make_gym_scene(target: str, **kwargs) -> GymScene:
    """Gymnasium entry point of every ``gym:`` scene (``scenes.scene_info`` registers it)."""
    return gym_scene_class(target)(**kwargs)


def probe_quantities(scene: str) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """What the state probe of a ``gym:`` scene reads: ``(name, kind, qpos indices)`` of its
    hinge angles (radians), slide positions (metres) and free or ball joints' pose entries
    (height, quaternion), each among the ``qpos`` entries its frames show."""
    scene_type = gym_scene_class(scene.removeprefix(PREFIX))
    env = scene_type(width=16, height=16)  # the camera decides what is visible; nothing is rendered
    try:
        kinds = {i: int(env.model.jnt_type[j]) for j in range(env.model.njnt) for i in _joint_positions(env.model, j)}
        visible = [int(i) for i in env.visible]
    finally:
        env.close()
    groups = (
        ("joint_angles", "angle", (mujoco.mjtJoint.mjJNT_HINGE,)),
        ("slide_positions", "scalar", (mujoco.mjtJoint.mjJNT_SLIDE,)),
        ("body_pose", "scalar", (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_BALL)),
    )
    quantities = []
    for name, kind, joint_types in groups:
        indices = tuple(i for i in visible if kinds.get(i) in joint_types)
        if indices:
            quantities.append((name, kind, indices))
    return tuple(quantities)


def _joint_positions(model: mujoco.MjModel, joint: int) -> range:
    sizes = {mujoco.mjtJoint.mjJNT_FREE: 7, mujoco.mjtJoint.mjJNT_BALL: 4}
    start = int(model.jnt_qposadr[joint])
    return range(start, start + sizes.get(model.jnt_type[joint], 1))
