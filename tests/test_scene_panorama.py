"""The panorama scene: seeded episodes, exact revisits, the target marker, the reward
and the exploration expert."""

import numpy as np
import pytest

from worldenv.scenes import make_scene
from worldenv.scenes.panorama import (
    AGENT_RADIUS,
    FIELD_OF_VIEW,
    MAX_TURN,
    OBJECT_MIN_SEPARATION,
    OBJECT_RING,
    OBJECTS,
    wrap_angle,
)


@pytest.fixture
def env():
    scene = make_scene("panorama").unwrapped
    yield scene
    scene.close()


def expert_rollout(env, seed, steps):
    frames, states, actions = [env.reset(seed=seed)[0]], [], []
    for _ in range(steps):
        actions.append(env.goal_action())
        obs, _, _, _, info = env.step(actions[-1])
        frames.append(obs)
        states.append(info["state"])
    return np.stack(frames), states, actions


def turn_to_target(env):
    for _ in range(20):
        env.step(np.array([np.clip(env.target_bearing_error() / MAX_TURN, -1, 1), 0], np.float32))
    assert abs(env.target_bearing_error()) < 1e-6


def test_same_seed_same_episode_and_other_seeds_differ(env):
    frames, states, _ = expert_rollout(env, seed=4, steps=30)
    frames_again, states_again, _ = expert_rollout(env, seed=4, steps=30)
    frames_other, _, _ = expert_rollout(env, seed=5, steps=30)
    np.testing.assert_array_equal(frames, frames_again)
    for state, again in zip(states, states_again):
        for key in state:
            np.testing.assert_array_equal(state[key], again[key])
    assert not np.array_equal(frames, frames_other)


def test_objects_are_redrawn_per_episode_on_the_ring(env):
    layouts = []
    for seed in range(5):
        env.reset(seed=seed)
        xy = env.data.mocap_pos[:, :2].copy()
        radii = np.linalg.norm(xy, axis=1)
        assert np.all((radii >= OBJECT_RING[0]) & (radii <= OBJECT_RING[1]))
        angles = np.sort(np.arctan2(xy[:, 1], xy[:, 0]))
        gaps = np.diff(np.append(angles, angles[0] + 2 * np.pi))
        assert gaps.min() >= OBJECT_MIN_SEPARATION - 1e-9
        assert np.linalg.norm(env.data.qpos[:2]) <= AGENT_RADIUS
        np.testing.assert_array_equal(env.task_state()[4:20], xy.ravel())
        layouts.append(xy)
    assert all(not np.allclose(layouts[0], other) for other in layouts[1:])


@pytest.mark.parametrize("turn", [1.0, -0.37, 0.8])
def test_turning_away_and_back_restores_the_view_exactly(env, turn):
    start, _ = env.reset(seed=2)
    start_pose = env.data.qpos.copy()
    for step_turn in (turn, -turn):
        for _ in range(25):  # up to 300 degrees: what was in view leaves it
            frame, *_ = env.step(np.array([step_turn, 0.0], np.float32))
        if step_turn == turn:
            assert not np.array_equal(frame, start)
    np.testing.assert_array_equal(env.data.qpos, start_pose)
    np.testing.assert_array_equal(frame, start)


def test_moving_forward_and_back_restores_the_view(env):
    start, _ = env.reset(seed=6)
    for move in (0.6, -0.6):
        for _ in range(3):
            frame, *_ = env.step(np.array([0.0, move], np.float32))
    np.testing.assert_array_equal(frame, start)


def test_the_agent_stays_within_its_disc(env):
    env.reset(seed=0)
    for _ in range(40):
        env.step(np.array([0.1, 1.0], np.float32))
        assert np.linalg.norm(env.data.qpos[:2]) <= AGENT_RADIUS + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_the_marker_shows_the_target_colour(env, seed):
    frame, _ = env.reset(seed=seed)
    marker_rgba = env.model.geom_rgba[env.model.geom("marker").id]
    target_geoms = env.model.body_geomadr[env.model.body(f"object{env.target}").id]
    np.testing.assert_array_equal(marker_rgba, env.model.geom_rgba[target_geoms])
    # And the frame itself tells the task: the corner's hue is the target's.
    corner = frame[3:8, 3:8].reshape(-1, 3).mean(axis=0)
    colours = np.array([rgb for _, rgb, _ in OBJECTS])
    hue_distance = np.linalg.norm(colours / colours.max(1, keepdims=True) - corner / corner.max(), axis=1)
    assert hue_distance.argmin() == env.target
    np.testing.assert_array_equal(env.task_state()[-2:], env.data.mocap_pos[env.target, :2])


def test_facing_the_target_earns_more_than_facing_away(env):
    env.reset(seed=3)
    turn_to_target(env)
    _, facing, *_, info = env.step(np.zeros(2, np.float32))
    assert facing == pytest.approx(1.5) and info["reward_centred"] > 0
    for _ in range(15):  # 180 degrees
        _, away, *_, info = env.step(np.array([1.0, 0.0], np.float32))
    assert away == pytest.approx(-1.0, abs=1e-6) and info["reward_centred"] == 0


def test_most_objects_are_out_of_view(env):
    _, states, _ = expert_rollout(env, seed=1, steps=200)
    in_view = []
    for state in states:
        x, y, cos_yaw, sin_yaw = state["task"][:4]
        objects = state["task"][4:20].reshape(-1, 2)
        bearing = np.arctan2(objects[:, 1] - y, objects[:, 0] - x) - np.arctan2(sin_yaw, cos_yaw)
        in_view.append(np.sum(np.abs(wrap_angle(bearing)) < np.deg2rad(FIELD_OF_VIEW) / 2))
    assert np.mean(in_view) < 0.35 * len(OBJECTS)


@pytest.mark.parametrize("seed", [0, 7])
def test_expert_actions_are_valid_and_revisit_views(env, seed):
    frames, states, actions = expert_rollout(env, seed=seed, steps=200)
    assert all(env.action_space.contains(action) for action in actions)
    # A revisit: the same pose after at least 8 steps spent elsewhere, seen identically.
    poses = np.stack([state["qpos"] for state in states])
    revisits = [
        (earlier, later)
        for later in range(len(poses))
        for earlier in range(later - 8)
        if np.array_equal(poses[earlier], poses[later]) and not np.array_equal(poses[earlier + 1], poses[earlier])
    ]
    assert revisits, "the expert should turn away and come back"
    for earlier, later in revisits:
        np.testing.assert_array_equal(frames[earlier + 1], frames[later + 1])


def test_bad_actions_name_the_expected_shape(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected an action of shape \(2,\)"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0], np.float32))
