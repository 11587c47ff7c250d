"""Duo: two point-mass agents in one walled arena, each pushing itself to its own target.

Seen from above. Agent 0 is red, agent 1 blue; each one's target is a disc of a
lighter tint of its colour, wider than the agent so that a ring of it stays
visible when the agent sits on it. The agents collide with each other and with
the walls, so what one does changes what the other can do.

``DuoScene`` is the joint-control Gymnasium env (``worldenv/Duo-v0``): one
``Box(-1, 1, (4,))`` action, what data collection and the world model use.
``DuoParallelEnv`` (``parallel_env()``) splits it into a PettingZoo
``ParallelEnv`` with one ``Box(-1, 1, (2,))`` action and one reward per agent.
"""

import mujoco
import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv
from pettingzoo.utils.conversions import parallel_to_aec

from worldenv.multi_agent import SplitParallelEnv
from worldenv.scenes.base import MujocoScene, add_visual_geom, set_orthographic_camera, use_flat_lighting

AGENTS = ("agent_0", "agent_1")
AGENT_COLOURS = ([0.85, 0.12, 0.12, 1.0], [0.12, 0.3, 0.9, 1.0])  # red, blue
TARGET_COLOURS = ([1.0, 0.62, 0.62, 1.0], [0.6, 0.72, 1.0, 1.0])  # the same hues, lighter
FLOOR_COLOUR, WALL_COLOUR = [0.93, 0.93, 0.93, 1.0], [0.3, 0.3, 0.33, 1.0]
ARENA_HALF_SIZE = 0.5  # metres from the centre to the inner face of a wall
WALL_HALF_THICKNESS = 0.025
VIEW_EXTENT = 2 * (ARENA_HALF_SIZE + 2 * WALL_HALF_THICKNESS)  # the walls and a thin margin
AGENT_RADIUS = 0.06  # about 7 pixels across at 64x64
TARGET_RADIUS = 0.09
AGENT_MASS = 0.5  # kg
JOINT_DAMPING = 2.0  # N s/m: with MAX_FORCE, a top speed of 0.8 m/s, reached in about 0.5 s
MAX_FORCE = 1.6  # N at |action| = 1
SEPARATION = 0.02  # extra clearance between agents (and between targets) at reset


class DuoScene(MujocoScene):
    """Two agents, each reaching its own target; the joint env of both.

    Action: ``(agent_0 fx, fy, agent_1 fx, fy)`` in ``[-1, 1]``. Each agent's
    reward is ``-|agent - its target| - reward_control_weight * |its action|^2``;
    the env's reward is their sum, and ``info`` carries ``reward_agent_0`` and
    ``reward_agent_1``. No termination: episodes are truncated by the time limit.
    ``info["state"]["task"]`` is ``(agent_0 xy, agent_1 xy, target_0 xy, target_1 xy)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    frame_skip = 5  # timestep 0.01 s: 20 control steps per second
    agents = AGENTS

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        width: int = 64,
        height: int = 64,
        reward_control_weight: float = 0.1,
        goal_noise: float = 0.1,
    ):
        self.reward_control_weight = reward_control_weight
        self.goal_noise = goal_noise
        super().__init__(render_mode, width, height)

    def build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        spec.option.timestep = 0.01
        world = spec.worldbody
        # The agents have no vertical degree of freedom, so the floor needs no contact. A thin
        # box, not a plane: llvmpipe renders a plane about 3x slower (measured, 64x64).
        add_visual_geom(
            world,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0, 0, -0.01],
            size=[VIEW_EXTENT, VIEW_EXTENT, 0.01],
            rgba=FLOOR_COLOUR,
        )
        wall_offset = ARENA_HALF_SIZE + WALL_HALF_THICKNESS
        wall_half_length = ARENA_HALF_SIZE + 2 * WALL_HALF_THICKNESS
        for axis in (0, 1):
            for sign in (-1.0, 1.0):
                position = [0.0, 0.0, AGENT_RADIUS]
                half_size = [wall_half_length, wall_half_length, AGENT_RADIUS]
                position[axis] = sign * wall_offset
                half_size[axis] = WALL_HALF_THICKNESS
                # condim 1: frictionless contacts, so an agent slides along a wall instead of sticking.
                world.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=position, size=half_size, condim=1, rgba=WALL_COLOUR)
        for index, agent in enumerate(AGENTS):
            body = world.add_body(name=agent, pos=[0.0, 0.0, AGENT_RADIUS])
            for axis_name, direction in (("x", [1, 0, 0]), ("y", [0, 1, 0])):
                joint = body.add_joint(
                    name=f"{agent}_{axis_name}", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=direction, damping=JOINT_DAMPING
                )
                spec.add_actuator(
                    name=f"{agent}_f{axis_name}",
                    target=joint.name,
                    trntype=mujoco.mjtTrn.mjTRN_JOINT,
                    gear=[MAX_FORCE, 0, 0, 0, 0, 0],
                    ctrlrange=[-1.0, 1.0],
                )
            body.add_geom(
                type=mujoco.mjtGeom.mjGEOM_SPHERE,
                size=[AGENT_RADIUS, 0, 0],
                mass=AGENT_MASS,
                condim=1,
                rgba=AGENT_COLOURS[index],
            )
            # Mocap: placed per episode, outside the simulated state, never moved by contact.
            target = world.add_body(name=f"target_{index}", mocap=True)
            add_visual_geom(
                target,
                type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                size=[TARGET_RADIUS, 0.001, 0],
                pos=[0, 0, 0.002],  # just above the floor, below the agents
                rgba=TARGET_COLOURS[index],
            )
        use_flat_lighting(spec)
        set_orthographic_camera(world, pos=[0, 0, 1.0], xyaxes=[1, 0, 0, 0, 1, 0], extent=VIEW_EXTENT)
        return spec

    def reset_task(self) -> None:
        self.data.qpos[:] = self._draw_apart(AGENT_RADIUS).ravel()  # joints: agent_0 x, y, agent_1 x, y
        self.data.mocap_pos[:, :2] = self._draw_apart(TARGET_RADIUS)

    def _draw_apart(self, radius: float) -> np.ndarray:
        """Two xy positions inside the arena whose discs of ``radius`` do not overlap."""
        limit = ARENA_HALF_SIZE - radius
        while True:
            positions = self.np_random.uniform(-limit, limit, size=(len(AGENTS), 2))
            if np.linalg.norm(positions[0] - positions[1]) > 2 * radius + SEPARATION:
                return positions

    def agent_positions(self) -> np.ndarray:
        """``(2, 2)``: each agent's xy, read from ``qpos`` (current after ``mj_step``, unlike ``xpos``)."""
        return self.data.qpos.reshape(len(AGENTS), 2).copy()

    def target_positions(self) -> np.ndarray:
        return self.data.mocap_pos[:, :2].copy()

    def distances(self) -> np.ndarray:
        """Each agent's distance to its own target."""
        return np.linalg.norm(self.agent_positions() - self.target_positions(), axis=1)

    def reward(self, action: np.ndarray) -> tuple[float, dict[str, float]]:
        control_costs = self.reward_control_weight * np.square(action.reshape(len(AGENTS), 2)).sum(axis=1)
        agent_rewards = -self.distances() - control_costs
        terms = {f"reward_{agent}": float(value) for agent, value in zip(AGENTS, agent_rewards)}
        return float(agent_rewards.sum()), terms

    def task_state(self) -> np.ndarray:
        return np.concatenate([self.agent_positions().ravel(), self.target_positions().ravel()])

    def goal_action(self) -> np.ndarray:
        """Each agent pushes toward its own target (PD on position), plus Gaussian noise
        of scale ``goal_noise`` so that collected episodes do not all follow straight lines."""
        error = self.target_positions() - self.agent_positions()
        velocity = self.data.qvel.reshape(len(AGENTS), 2)
        force = 5.0 * error - 1.0 * velocity + self.goal_noise * self.np_random.standard_normal(error.shape)
        return np.clip(force.ravel(), -1.0, 1.0).astype(np.float32)


class DuoParallelEnv(SplitParallelEnv):
    """The duo scene as a PettingZoo ``ParallelEnv`` (``worldenv/multi_agent.py``).

    Both agents observe the same top-down frame (a copy each; agent 0 is the red
    one); each sends a ``Box(-1, 1, (2,))`` force and gets its own reward. Nobody
    terminates; everyone is truncated after ``max_cycles`` steps.
    ``infos[agent]["state"]`` is the scene's true state, ``state()`` the same flat.
    """

    metadata = {
        "name": "duo_v0",
        "render_modes": ["rgb_array"],
        "render_fps": DuoScene.metadata["render_fps"],
        "is_parallelizable": True,
    }
    joint: DuoScene  # what __init__ passes SplitParallelEnv

    def __init__(self, max_cycles: int = 200, render_mode: str | None = "rgb_array", **scene_kwargs):
        super().__init__(DuoScene(render_mode=render_mode, **scene_kwargs), AGENTS, "duo_v0", max_cycles)
        self.state_space = spaces.Box(-np.inf, np.inf, self.state().shape, np.float64)

    def state(self) -> np.ndarray:
        """The global state: ``qpos``, ``qvel`` and the task vector, as in ``info["state"]``."""
        return np.concatenate(list(self.joint.state().values()))


def parallel_env(**kwargs) -> DuoParallelEnv:
    """PettingZoo's conventional factory: ``parallel_env(max_cycles=..., width=..., ...)``."""
    return DuoParallelEnv(**kwargs)


def env(**kwargs) -> AECEnv:
    """The same env in PettingZoo's turn-based AEC API (agents act in turn, physics steps once per cycle)."""
    return parallel_to_aec(parallel_env(**kwargs))
