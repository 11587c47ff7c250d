"""Panorama: a camera that turns and moves inside an arena of coloured objects.

The long-context memory scene. The camera's 60 degree field of view shows one or
two of the eight objects at a time, so a world model must remember what it saw
before it turned away, and render it unchanged when it turns back.

Everything that decides a pixel is a function of the camera pose alone: the
camera is moved kinematically (no dynamics, a pose quantised to a fine grid so
turning back by the opposite action restores it bit for bit), and the only
shading comes from a light straight down plus ambient, with no specular term,
so a surface looks the same from wherever it is seen.
"""

import mujoco
import numpy as np

from worldenv.scenes.base import CAMERA, MujocoScene, add_visual_geom, use_flat_lighting

ARENA_HALF_SIZE = 3.0  # metres from the centre to each wall
WALL_HEIGHT = 1.2
OBJECT_RING = (1.2, 2.5)  # objects lie at these distances from the centre
OBJECT_MIN_SEPARATION = np.deg2rad(25.0)  # around the centre, so objects seldom hide one another
AGENT_RADIUS = 0.5  # the camera stays within this disc, always inside the ring of objects
EYE_HEIGHT = 0.45
FIELD_OF_VIEW = 60.0  # degrees, vertical (and horizontal: frames are square by default)
MAX_TURN = np.deg2rad(12.0)  # radians per step at action[0] = +-1
MAX_MOVE = 0.05  # metres per step at action[1] = +-1
POSE_GRID = 2.0**-30  # quantum of the pose: a power of two, so every grid point is exact in float64
CENTRED_TOLERANCE = np.deg2rad(6.0)  # the target is within ~6 pixels of the frame's centre column
CENTRED_BONUS = 0.5
# The expert counts a heading as reached within this. It is below the slowest turn the
# expert makes per step (4.8 degrees), so without added noise its last step lands on
# the heading (to the float32 rounding of the action), not up to 3 degrees short.
HEADING_TOLERANCE = np.deg2rad(3.0)
MARKER_DISTANCE = 0.3  # metres in front of the eye: beyond the near clip plane, nearer than any object
MARKER_SIZE, MARKER_MARGIN = 7 / 64, 2 / 64  # of the view's height: 7 and 2 pixels at 64x64

_BOX, _SPHERE, _CYLINDER, _CAPSULE, _ELLIPSOID = (
    mujoco.mjtGeom.mjGEOM_BOX,
    mujoco.mjtGeom.mjGEOM_SPHERE,
    mujoco.mjtGeom.mjGEOM_CYLINDER,
    mujoco.mjtGeom.mjGEOM_CAPSULE,
    mujoco.mjtGeom.mjGEOM_ELLIPSOID,
)
# (name, rgb, parts as (geom type, size, position of its centre above the object's foot)).
# Shapes and colours both differ, so either one alone tells the objects apart.
OBJECTS = (
    ("red ball", (0.9, 0.1, 0.1), ((_SPHERE, (0.25, 0, 0), (0, 0, 0.25)),)),
    ("green cube", (0.1, 0.75, 0.15), ((_BOX, (0.2, 0.2, 0.2), (0, 0, 0.2)),)),
    ("blue column", (0.15, 0.3, 1.0), ((_CYLINDER, (0.15, 0.4, 0), (0, 0, 0.4)),)),
    ("yellow capsule", (1.0, 0.85, 0.1), ((_CAPSULE, (0.12, 0.4, 0), (0, 0, 0.55)),)),
    ("magenta disc", (0.85, 0.15, 0.85), ((_ELLIPSOID, (0.3, 0.3, 0.12), (0, 0, 0.12)),)),
    ("cyan snowman", (0.1, 0.85, 0.85), ((_SPHERE, (0.2, 0, 0), (0, 0, 0.2)), (_SPHERE, (0.13, 0, 0), (0, 0, 0.5)))),
    (
        "orange arch",
        (1.0, 0.5, 0.05),
        (
            (_BOX, (0.06, 0.06, 0.25), (0, -0.2, 0.25)),
            (_BOX, (0.06, 0.06, 0.25), (0, 0.2, 0.25)),
            (_BOX, (0.06, 0.28, 0.06), (0, 0, 0.56)),
        ),
    ),
    ("white cross", (0.95, 0.95, 0.95), ((_BOX, (0.06, 0.06, 0.4), (0, 0, 0.4)), (_BOX, (0.06, 0.25, 0.06), (0, 0, 0.55)))),
)


def wrap_angle(angle):
    """Map to [-pi, pi): the signed shortest turn."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _on_grid(value):
    return np.round(np.asarray(value) / POSE_GRID) * POSE_GRID


class PanoramaScene(MujocoScene):
    """Turn (and step forward or back) to face the object whose colour the
    marker in the frame's top-left corner shows.

    Actions: ``(turn, move)``; ``turn`` rotates the camera by up to 12 degrees per
    step (positive: to the left), ``move`` steps up to 5 cm along the heading,
    within a disc of 0.5 m radius. Reward: ``cos(bearing error)`` of the target
    plus 0.5 while it is within 6 degrees of the view's centre; no termination.
    ``info["state"]["task"]`` is ``(x, y, cos yaw, sin yaw, x_i, y_i for each of the
    8 objects, target x, target y)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    frame_skip = 1

    def build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        spec.option.timestep = 0.05
        # The camera is posed directly each step; nothing is simulated or collides.
        spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT | mujoco.mjtDisableBit.mjDSBL_GRAVITY
        self._add_arena(spec)
        for index, (_, rgb, parts) in enumerate(OBJECTS):
            body = spec.worldbody.add_body(name=f"object{index}", mocap=True)
            for geom_type, size, pos in parts:
                add_visual_geom(body, type=geom_type, size=size, pos=pos, rgba=[*rgb, 1.0])
        self._add_agent(spec)
        # Ambient light plus one light straight down, no specular: a surface's shade
        # depends on its own orientation only, never on where the camera is.
        use_flat_lighting(spec, ambient=0.7, diffuse=0.0)
        spec.worldbody.add_light(
            type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
            pos=[0, 0, 5],
            dir=[0, 0, -1],
            diffuse=[0.35] * 3,
            specular=[0.0] * 3,
            castshadow=False,
        )
        return spec

    def _add_arena(self, spec: mujoco.MjSpec) -> None:
        # A checker floor, so that turning and moving show even when no object is in view.
        spec.add_texture(
            name="floor",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
            width=32,
            height=32,
            rgb1=[0.42, 0.38, 0.33],
            rgb2=[0.3, 0.27, 0.24],
        )
        floor_material = spec.add_material(name="floor", texrepeat=[ARENA_HALF_SIZE, ARENA_HALF_SIZE])
        floor_material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "floor"
        add_visual_geom(
            spec.worldbody,
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[ARENA_HALF_SIZE, ARENA_HALF_SIZE, 0.1],
            material="floor",
        )
        for x, y in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            add_visual_geom(
                spec.worldbody,
                type=mujoco.mjtGeom.mjGEOM_BOX,
                pos=[x * ARENA_HALF_SIZE, y * ARENA_HALF_SIZE, WALL_HEIGHT / 2],
                size=[abs(y) * ARENA_HALF_SIZE + 0.05, abs(x) * ARENA_HALF_SIZE + 0.05, WALL_HEIGHT / 2],
                rgba=[0.7, 0.7, 0.72, 1.0],
            )

    def _add_agent(self, spec: mujoco.MjSpec) -> None:
        agent = spec.worldbody.add_body(name="agent", mass=1.0, inertia=[0.1] * 3, explicitinertial=True)
        agent.add_joint(name="x", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0])
        agent.add_joint(name="y", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 1, 0])
        agent.add_joint(name="yaw", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
        # Looks along the body's +x, horizontally: image right is -y, image up is +z.
        camera = agent.add_camera(name=CAMERA, pos=[0, 0, EYE_HEIGHT], fovy=FIELD_OF_VIEW)
        camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
        camera.alt.xyaxes = [0, -1, 0, 0, 0, 1]
        # The target marker: a flat square in the view's top-left corner, sized in
        # fractions of the view's height so it covers the same pixels at any frame size.
        view_height = 2 * MARKER_DISTANCE * np.tan(np.deg2rad(FIELD_OF_VIEW) / 2)
        view_width = view_height * self.width / self.height
        size, margin = MARKER_SIZE * view_height, MARKER_MARGIN * view_height
        add_visual_geom(
            agent,
            name="marker",
            type=_BOX,
            size=[0.001, size / 2, size / 2],
            pos=[MARKER_DISTANCE, view_width / 2 - margin - size / 2, EYE_HEIGHT + view_height / 2 - margin - size / 2],
        )

    # ---- the task ------------------------------------------------------------------
    @property
    def action_dim(self) -> int:
        return 2

    def reset_task(self) -> None:
        rng = self.np_random
        count = len(OBJECTS)
        # Angles around the centre at least OBJECT_MIN_SEPARATION apart, uniformly among
        # such arrangements: the spare angle is split by a flat Dirichlet draw.
        spare = 2 * np.pi - count * OBJECT_MIN_SEPARATION
        gaps = OBJECT_MIN_SEPARATION + spare * rng.dirichlet(np.ones(count))
        angles = rng.uniform(0, 2 * np.pi) + np.cumsum(gaps)
        radii = rng.uniform(*OBJECT_RING, size=count)
        order = rng.permutation(count)  # which object sits at which place
        self.data.mocap_pos[order, 0] = radii * np.cos(angles)
        self.data.mocap_pos[order, 1] = radii * np.sin(angles)
        # Each object turns its front (+x) to the centre, where the camera is: the
        # arch and the cross show their outline rather than their edge.
        facing = angles + np.pi
        self.data.mocap_quat[order] = np.stack([np.cos(facing / 2), np.zeros(count), np.zeros(count), np.sin(facing / 2)], axis=1)
        self.target = int(rng.integers(count))
        marker = self.model.geom("marker").id
        self.model.geom_rgba[marker] = [*OBJECTS[self.target][1], 1.0]
        distance, direction = AGENT_RADIUS * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        start = [distance * np.cos(direction), distance * np.sin(direction), rng.uniform(-np.pi, np.pi)]
        self.data.qpos[:] = _on_grid(start)
        self._start_look()

    def apply_action(self, action: np.ndarray) -> None:
        """Pose the camera directly: turn, then step along the new heading."""
        x, y, yaw = self.data.qpos
        yaw = _on_grid(yaw + MAX_TURN * action[0])
        position = np.array([x, y]) + MAX_MOVE * action[1] * np.array([np.cos(yaw), np.sin(yaw)])
        distance = np.linalg.norm(position)
        if distance > AGENT_RADIUS:
            position *= AGENT_RADIUS / distance
        pose = np.array([*_on_grid(position), yaw])
        self.data.qvel[:] = (pose - self.data.qpos) / self.model.opt.timestep
        self.data.qpos[:] = pose
        mujoco.mj_forward(self.model, self.data)

    def target_bearing_error(self) -> float:
        """Signed angle (radians, positive: to the left) from the heading to the target."""
        x, y, yaw = self.data.qpos
        target_x, target_y = self.data.mocap_pos[self.target, :2]
        return float(wrap_angle(np.arctan2(target_y - y, target_x - x) - yaw))

    def reward(self, action: np.ndarray) -> tuple[float, dict[str, float]]:
        error = self.target_bearing_error()
        facing = float(np.cos(error))
        centred = CENTRED_BONUS * float(abs(error) < CENTRED_TOLERANCE)
        return facing + centred, {"reward_facing": facing, "reward_centred": centred}

    def task_state(self) -> np.ndarray:
        x, y, yaw = self.data.qpos
        objects = self.data.mocap_pos[:, :2]
        return np.concatenate([[x, y, np.cos(yaw), np.sin(yaw)], objects.ravel(), objects[self.target]])

    # ---- the exploration expert ----------------------------------------------------
    # A cycle of three phases, each a heading to reach: "look" (turn to the target, or
    # sometimes anywhere, while stepping forward or back), "away" (turn 4 to 60 steps'
    # worth to one side, possibly more than a full turn) and "back" (unwind to the
    # heading where "away" began, so the same view returns after a long absence).
    # Phases end on the heading reached, not on a step count, so the cycle survives
    # added noise and other policies' steps in between.

    def _start_look(self) -> None:
        rng = self.np_random
        self._phase = "look"
        self._look_at_target = bool(rng.uniform() < 0.6)
        self._goal_yaw = self.data.qpos[2] + rng.uniform(-np.pi, np.pi)
        self._turn_rate, self._move = 1.0, float(rng.uniform(-1.0, 1.0))
        self._look_steps_left = int(rng.integers(2, 11))

    def _next_phase(self) -> None:
        rng = self.np_random
        if self._phase == "look":
            self._phase, self._anchor_yaw = "away", self.data.qpos[2]
            self._turn_rate = float(rng.uniform(0.4, 1.0))
            turn = rng.choice([-1.0, 1.0]) * int(rng.integers(4, 61)) * self._turn_rate * MAX_TURN
            self._goal_yaw, self._move = self._anchor_yaw + turn, 0.0
        elif self._phase == "away":
            self._phase, self._goal_yaw = "back", self._anchor_yaw
        else:
            self._start_look()

    def _remaining_turn(self) -> float:
        if self._phase == "look" and self._look_at_target:
            return self.target_bearing_error()
        return float(self._goal_yaw - self.data.qpos[2])

    def goal_action(self) -> np.ndarray:
        """The next action of the look / turn away / turn back cycle (call once per step)."""
        reached = abs(self._remaining_turn()) < HEADING_TOLERANCE
        if self._phase == "look":
            self._look_steps_left -= 1
            reached = reached and self._look_steps_left <= 0
        if reached:
            self._next_phase()
        turn = np.clip(self._remaining_turn() / MAX_TURN, -self._turn_rate, self._turn_rate)
        return np.array([turn, self._move], dtype=np.float32)
