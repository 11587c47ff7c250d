"""Collection, storage, verification and window sampling."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from worldenv.config import ConfigError
from worldenv.data.collect import CollectConfig, collect, episode_seeds
from worldenv.data.dataset import load_dataset
from worldenv.data.format import MANIFEST, DatasetError, Manifest, read_shard, verify
from worldenv.data.policies import POLICIES, make_policy
from worldenv.data.sampler import WindowSampler
from worldenv.data.summary import summarize
from worldenv.scenes import make_scene

TINY = dict(scene="reacher", episodes=5, steps_per_episode=12, shard_size=2, seed=3)


@pytest.fixture(scope="module")
def reacher_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "reacher"
    collect(CollectConfig(**TINY), out, workers=2, progress=False)
    return out


def arrays_of(directory: Path) -> dict[str, np.ndarray]:
    data = load_dataset(directory)
    return {"frames": data.frames, "actions": data.actions, "rewards": data.rewards, **data.states}


def test_collection_is_complete_verified_and_described(reacher_dataset):
    manifest = Manifest.load(reacher_dataset)
    assert manifest.complete and manifest.episodes == 5 and manifest.steps == 5 * 12
    assert [s.file for s in manifest.shards] == ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    assert manifest.versions["mujoco"] and manifest.versions["worldenv"]
    assert manifest.collection["seed"] == 3 and manifest.state_dims == {"qpos": 4, "qvel": 4, "task": 4}
    assert verify(reacher_dataset) == []


def test_dataset_does_not_depend_on_worker_count(reacher_dataset, tmp_path):
    collect(CollectConfig(**TINY), tmp_path / "one", workers=1, progress=False)
    for key, value in arrays_of(tmp_path / "one").items():
        np.testing.assert_array_equal(value, arrays_of(reacher_dataset)[key], err_msg=key)


def test_stored_episode_replays_in_mujoco(reacher_dataset):
    """Frames, states and rewards are what the scene produces for the stored seed and actions."""
    episode = read_shard(reacher_dataset / "shard-00001.npz")[0]
    env = make_scene("reacher", max_episode_steps=-1)
    frame, info = env.reset(seed=episode.seed)
    np.testing.assert_array_equal(frame, episode.frames[0])
    for t, action in enumerate(episode.actions):
        frame, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(frame, episode.frames[t + 1])
        np.testing.assert_allclose(info["state"]["qpos"], episode.states["qpos"][t + 1])
        assert reward == pytest.approx(episode.rewards[t])
    assert episode.truncated[-1] and not episode.truncated[:-1].any() and not episode.terminated.any()


def test_frames_and_aligned_actions(reacher_dataset):
    data = load_dataset(reacher_dataset)
    assert data.num_episodes == 5 and data.num_frames == 5 * 13
    episode = read_shard(reacher_dataset / "shard-00000.npz")[1]
    frames = data.frames[data.episode_frames(1)]
    np.testing.assert_array_equal(frames, episode.frames)
    actions = data.actions[data.episode_frames(1)]
    assert np.all(actions[0] == 0), "no action leads to the reset frame"
    np.testing.assert_array_equal(actions[1:], episode.actions)
    held_out = load_dataset(reacher_dataset, episodes=slice(3, None))
    assert list(held_out.episode_index) == [3, 4]


def test_window_sampler(reacher_dataset):
    data = load_dataset(reacher_dataset)
    sampler = WindowSampler(data, length=6, seed=0)
    assert len(sampler) == 5 * (13 - 6 + 1)
    window = sampler.sample(64)
    assert window.frames.shape == (64, 6, 64, 64, 3) and window.frames.dtype == np.uint8
    assert window.actions.shape == (64, 6, 2) and window.rewards.shape == (64, 6)
    assert window.states["qpos"].shape == (64, 6, 4)
    # Windows never cross an episode boundary: a reset frame can only come first.
    assert not window.first[:, 1:].any()
    for b in range(64):
        start = window.start[b]
        np.testing.assert_array_equal(window.frames[b], data.frames[start : start + 6])
        np.testing.assert_array_equal(window.actions[b], data.actions[start : start + 6])
    again = WindowSampler(data, length=6, seed=0).sample(64)
    np.testing.assert_array_equal(again.start, window.start)
    with pytest.raises(ValueError, match="exceeds the longest episode"):
        WindowSampler(data, length=14)


def test_policies_are_seeded_and_valid():
    env = make_scene("cartpole")
    for name in POLICIES:
        runs = []
        for _ in range(2):
            env.reset(seed=0)
            policy = make_policy(name)
            policy.reset(env.unwrapped, episode_seeds(0, 0)[1])
            runs.append(np.stack([policy(env.unwrapped) for _ in range(30)]))
        np.testing.assert_array_equal(runs[0], runs[1])
        assert np.all(np.abs(runs[0]) <= 1.0), name
    with pytest.raises(ValueError, match="unknown exploration policy 'brownian'"):
        make_policy("brownian")


def test_smooth_noise_is_temporally_correlated():
    env = make_scene("reacher")
    env.reset(seed=0)
    smooth, uniform = make_policy("smooth"), make_policy("uniform")
    correlations = []
    for policy in (smooth, uniform):
        policy.reset(env.unwrapped, np.random.default_rng(0))
        actions = np.stack([policy(env.unwrapped) for _ in range(500)])[:, 0]
        correlations.append(np.corrcoef(actions[:-1], actions[1:])[0, 1])
    assert correlations[0] > 0.6 and abs(correlations[1]) < 0.15


def test_gentle_noise_lets_the_pole_fall_under_its_own_weight():
    env = make_scene("cartpole", max_episode_steps=300)
    for episode in range(3):
        env.reset(seed=episode)
        policy = make_policy("gentle")
        policy.reset(env.unwrapped, np.random.default_rng(episode))
        actions, terminated = [], False
        while not terminated:
            actions.append(policy(env.unwrapped))
            _, _, terminated, truncated, _ = env.step(actions[-1])
            assert not truncated, "a pole left to itself falls within 300 steps"
        assert np.abs(actions).max() < 0.6, "pushes far smaller than smooth noise's (scale up to 1)"
    env.close()


def test_cartpole_mix_covers_long_balancing_and_falls(tmp_path):
    manifest = collect(CollectConfig(scene="cartpole", episodes=6, steps_per_episode=300, shard_size=6), tmp_path, progress=False)
    data = load_dataset(tmp_path)
    assert data.episode_lengths.max() > 60, "the expert keeps the pole up for long stretches"
    assert data.terminated.any(), "falls (terminations) are in the data"
    assert manifest.complete


def test_roam_drives_the_cartpole_into_its_end_stops_where_the_pole_falls():
    """The default expert holds the rail's middle; steered to setpoints past the rail's
    ends, it balances the pole to a stop, where the impact drops it: the ending the
    dream-trained policies meet in MuJoCo."""
    scene = make_scene("cartpole").unwrapped
    reach = {}
    for name in ("goal", "roam"):
        reach[name] = []
        for episode in range(4):
            scene.reset(seed=episode)
            policy = make_policy(name)
            policy.reset(scene, np.random.default_rng(episode))
            farthest = 0.0
            for _ in range(250):
                scene.apply_action(policy(scene))
                farthest = max(farthest, abs(scene.data.qpos[0]))
                if scene.is_terminated():
                    break
            reach[name].append((farthest, scene.is_terminated()))
    scene.close()
    assert all(farthest < 0.9 and not fell for farthest, fell in reach["goal"]), reach
    assert sum(farthest > 0.99 and fell for farthest, fell in reach["roam"]) >= 3, reach


def test_the_cartpole_expert_is_steered_at_a_steady_pace():
    """Without a setpoint the expert is the one the shipped data was collected with; with one,
    the cart error it feeds back is capped, so a far setpoint is no single shove."""
    from worldenv.scenes.cartpole import SETPOINT_PULL

    scene = make_scene("cartpole").unwrapped
    scene.reset(seed=0)
    scene.data.qpos[:], scene.data.qvel[:] = [0.3, 0.01], [0.1, -0.05]
    held = 1.0 * 0.3 + 10.0 * 0.01 + 1.5 * 0.1 + 2.0 * -0.05
    assert np.isclose(scene.goal_action()[0], held / 3.0)
    assert np.isclose(scene.goal_action(setpoint=0.0)[0], scene.goal_action()[0])
    far = scene.goal_action(setpoint=-5.0)[0]
    assert np.isclose(far, (held - 0.3 + SETPOINT_PULL) / 3.0)
    scene.close()


def test_roam_names_what_a_scene_lacks():
    for settings in ({"policy": "roam"}, {"exploration_mix": {"goal": 0.5, "roam": 0.5}}):
        with pytest.raises(ConfigError, match="'roam' steers the scene's expert.*'reacher' has no setpoint_range"):
            CollectConfig(**{**TINY, **settings}).validate()
    CollectConfig(**{**TINY, "scene": "cartpole", "policy": "roam"}).validate()
    scene = make_scene("reacher").unwrapped
    scene.reset(seed=0)
    with pytest.raises(ValueError, match="'roam' expects a scene whose expert can be steered"):
        make_policy("roam").reset(scene, np.random.default_rng(0))
    scene.close()


def _shoulder_turn_per_frame(policy_name: str, episodes: int = 6, steps: int = 120) -> np.ndarray:
    """|change of the shoulder angle| per step under one policy (physics only, no frames)."""
    scene = make_scene("reacher").unwrapped
    turns = []
    for episode in range(episodes):
        scene.reset(seed=episode)
        policy = make_policy(policy_name)
        policy.reset(scene, np.random.default_rng(episode))
        angle = scene.data.qpos[0]
        for _ in range(steps):
            scene.apply_action(policy(scene))
            turns.append(abs(scene.data.qpos[0] - angle))
            angle = scene.data.qpos[0]
    scene.close()
    return np.array(turns)


def test_reacher_mix_keeps_the_arm_slow_enough_to_see():
    # Strong correlated noise spins the reacher's arm faster than 64x64 frames at 50 Hz
    # can show (the reason the mix holds little of it): the control for this test.
    assert np.percentile(_shoulder_turn_per_frame("smooth"), 90) > 0.8
    turns = _shoulder_turn_per_frame("mix")
    assert np.percentile(turns, 90) < 0.3, "most frames move the fingertip by at most ~4 pixels"
    assert np.percentile(turns, 50) > 0.02, "the arm moves"


def test_uniform_noise_keeps_the_stream_of_earlier_datasets():
    env = make_scene("reacher")
    env.reset(seed=0)
    policy = make_policy("uniform")
    policy.reset(env.unwrapped, np.random.default_rng(5))
    actions = np.stack([policy(env.unwrapped) for _ in range(10)])
    np.testing.assert_array_equal(actions, np.random.default_rng(5).uniform(-1, 1, (10, 2)).astype(np.float32))


def test_jitter_is_white_noise_of_a_small_per_episode_amplitude():
    env = make_scene("reacher")
    env.reset(seed=0)
    amplitudes = []
    for episode in range(8):
        policy = make_policy("jitter")
        policy.reset(env.unwrapped, np.random.default_rng(episode))
        actions = np.stack([policy(env.unwrapped) for _ in range(400)])
        amplitudes.append(np.abs(actions).max())
        assert abs(np.corrcoef(actions[:-1, 0], actions[1:, 0])[0, 1]) < 0.15
    assert 0.05 <= min(amplitudes) and max(amplitudes) <= 0.5 and np.ptp(amplitudes) > 0.1


def test_frames_after_termination_record_the_fall_past_the_terminal_state():
    """Past the step that ends the episode, ``frames_after_termination`` more steps are kept,
    each terminal, so the data holds a pole beyond 0.2 rad; without them it ends at the fall."""
    from worldenv.data.collect import run_episode
    from worldenv.data.policies import make_policy

    env = make_scene("cartpole", max_episode_steps=300)
    for after in (0, 3):
        config = CollectConfig(
            scene="cartpole", episodes=1, steps_per_episode=300, policy="uniform", frames_after_termination=after
        )
        episode = run_episode(env, make_policy("uniform"), config, 0)
        first = int(np.argmax(episode.terminated))
        assert episode.terminated[first:].all() and not episode.terminated[:first].any()
        assert len(episode.terminated) - first == after + 1
        angles = np.abs(episode.states["qpos"][first + 1 :, 1])  # frame i + 1 follows step i
        assert angles.min() > 0.2 and angles[-1] >= angles[0]
    env.close()
    with pytest.raises(ConfigError, match="frames_after_termination: expected an integer >= 0"):
        CollectConfig(scene="cartpole", episodes=1, frames_after_termination=-1).validate()


def test_collect_refuses_an_unusable_out_before_any_work_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetError, match=f"{tmp_path / 'file' / 'data'}: cannot create the dataset directory, .*is a file"):
        collect(CollectConfig(**TINY), tmp_path / "file" / "data", progress=False)
    with pytest.raises(ValueError, match="expected an even width >= 16 pixels, got 17"):
        collect(CollectConfig(**{**TINY, "width": 17}), tmp_path / "w17" / "data", progress=False)
    with pytest.raises(ConfigError, match="workers: expected a positive number of worker processes .*got 0"):
        collect(CollectConfig(**TINY), tmp_path / "w0", workers=0, progress=False)
    access = os.access
    # Tests run as root, whom chmod does not stop: os.access is what a read-only directory answers.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: path != tmp_path and access(path, mode, **kw))
    with pytest.raises(DatasetError, match=f"{tmp_path / 'new'}: cannot write the dataset, {tmp_path} is not writable"):
        collect(CollectConfig(**TINY), tmp_path / "new", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_inspect_counts_only_the_episodes_that_verified(reacher_dataset, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(reacher_dataset, damaged)
    (damaged / "shard-00001.npz").unlink()  # episodes 2 and 3 of 5
    report, problems = summarize(damaged)
    assert problems == [f"{damaged / 'shard-00001.npz'}: missing"]
    assert "episodes  3 (INCOMPLETE, 5 recorded, 3 verified)  steps 36  frames 39" in report
    assert "shards    2 of 3 verified" in report and "1 problem(s)" in report


def test_corrupted_and_truncated_shards_are_named(reacher_dataset, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(reacher_dataset, damaged)
    flipped, cut = damaged / "shard-00001.npz", damaged / "shard-00002.npz"
    raw = bytearray(flipped.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    flipped.write_bytes(bytes(raw))
    cut.write_bytes(cut.read_bytes()[:-100])
    problems = verify(damaged)
    assert len(problems) == 2
    assert "shard-00001.npz: sha256 mismatch" in problems[0] and "shard-00002.npz" in problems[1]
    with pytest.raises(DatasetError, match="shard-00001.npz"):
        load_dataset(damaged)
    report, problems = summarize(damaged)
    assert "2 problem(s)" in report
    result = subprocess.run([sys.executable, "-m", "worldenv.cli", "inspect", str(damaged)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "shard-00001.npz" in result.stderr and "shard-00002.npz" in result.stderr
    # Rerunning the collection repairs exactly the damaged shards and leaves the rest alone.
    untouched = damaged / "shard-00000.npz"
    stamp = untouched.stat().st_mtime_ns
    collect(CollectConfig(**TINY), damaged, progress=False)
    assert verify(damaged) == [] and untouched.stat().st_mtime_ns == stamp
    for key, value in arrays_of(damaged).items():
        np.testing.assert_array_equal(value, arrays_of(reacher_dataset)[key], err_msg=key)


def test_missing_manifest_or_shard(reacher_dataset, tmp_path):
    assert "no manifest" in verify(tmp_path)[0]
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(reacher_dataset, partial)
    (partial / "shard-00000.npz").unlink()
    assert verify(partial) == [f"{partial / 'shard-00000.npz'}: missing"]
    manifest = json.loads((partial / MANIFEST).read_text())
    manifest["complete"] = False
    (partial / MANIFEST).write_text(json.dumps(manifest))
    assert any("collection incomplete" in p for p in verify(partial))


def test_resume_refuses_different_settings(reacher_dataset):
    with pytest.raises(ConfigError, match="steps_per_episode=12, not 13"):
        collect(CollectConfig(**{**TINY, "steps_per_episode": 13}), reacher_dataset, progress=False)
    with pytest.raises(ConfigError, match="at least"):
        collect(CollectConfig(**{**TINY, "episodes": 4}), reacher_dataset, progress=False)


def test_resume_refuses_a_changed_exploration_mix(reacher_dataset, monkeypatch):
    from worldenv.scenes.reacher import ReacherScene

    recorded = Manifest.load(reacher_dataset).collection["exploration_mix"]
    assert recorded == ReacherScene.exploration_mix
    monkeypatch.setattr(ReacherScene, "exploration_mix", {"uniform": 1.0})
    with pytest.raises(ConfigError, match=r"exploration_mix=.*not \{'uniform': 1.0\}"):
        collect(CollectConfig(**TINY), reacher_dataset, progress=False)


def test_resume_extends_a_dataset(reacher_dataset, tmp_path):
    import shutil

    grown = tmp_path / "grown"
    shutil.copytree(reacher_dataset, grown)
    collect(CollectConfig(**{**TINY, "episodes": 7}), grown, progress=False)
    assert Manifest.load(grown).episodes == 7 and verify(grown) == []
    fresh = tmp_path / "fresh"
    collect(CollectConfig(**{**TINY, "episodes": 7}), fresh, progress=False)
    for key, value in arrays_of(fresh).items():
        np.testing.assert_array_equal(value, arrays_of(grown)[key], err_msg=key)


def test_killed_collection_resumes_to_the_same_dataset(reacher_dataset, tmp_path):
    """SIGKILL the CLI after its first shard lands, rerun it, get the uninterrupted result."""
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "worldenv.cli",
        "collect",
        "--scene",
        "reacher",
        "--episodes",
        "5",
        "--steps",
        "12",
        "--shard-size",
        "1",
        "--seed",
        "3",
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (out / MANIFEST).exists() and Manifest.load(out).shards:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    recorded = Manifest.load(out)
    assert not recorded.complete and 1 <= recorded.episodes < 5
    subprocess.run(command, check=True, capture_output=True)
    assert Manifest.load(out).complete and verify(out) == []
    for key, value in arrays_of(out).items():
        np.testing.assert_array_equal(value, arrays_of(reacher_dataset)[key], err_msg=key)


def test_collect_config_errors_name_the_key():
    from worldenv import config

    with pytest.raises(ConfigError, match=r"collect.episodes: expected int, got 'many'"):
        config.build(CollectConfig, {"scene": "reacher", "episodes": "many"}, "collect")
    with pytest.raises(ConfigError, match=r"collect: unknown key 'episode'"):
        config.build(CollectConfig, {"scene": "reacher", "episode": 3}, "collect")
    with pytest.raises(ConfigError, match=r"collect.episodes: required key missing"):
        config.build(CollectConfig, {"scene": "reacher"}, "collect")
    with pytest.raises(ConfigError, match=r"collect.shard_size: expected a positive integer, got 0"):
        config.build(CollectConfig, {"scene": "reacher", "episodes": 2, "shard_size": 0}, "collect")
    with pytest.raises(ConfigError, match=r"collect.scene: unknown scene 'hopper'"):
        config.build(CollectConfig, {"scene": "hopper", "episodes": 2}, "collect")
    with pytest.raises(ConfigError, match=r"collect.exploration_mix: expected positive weights of \['gentle'"):
        config.build(CollectConfig, {"scene": "reacher", "episodes": 2, "exploration_mix": {"wobble": 1.0}}, "collect")
    with pytest.raises(ConfigError, match=r"collect.exploration_mix: applies to policy 'mix', not 'goal'"):
        config.build(
            CollectConfig, {"scene": "reacher", "episodes": 2, "policy": "goal", "exploration_mix": {"goal": 1}}, "collect"
        )


def test_a_preset_can_set_the_exploration_mix(tmp_path):
    """The mix a dataset is collected with can be pinned in its preset (the first reacher
    dataset's, for instance): it is used, and recorded in the manifest."""
    lag_one = {}
    for name in ("goal", "uniform"):
        out = tmp_path / name
        collect(CollectConfig(**{**TINY, "episodes": 2, "exploration_mix": {name: 1.0}}), out, progress=False)
        assert Manifest.load(out).collection["exploration_mix"] == {name: 1.0}
        actions = load_dataset(out).actions[1:12, 0]  # the first episode's (frame 0 has none)
        lag_one[name] = np.corrcoef(actions[:-1], actions[1:])[0, 1]
    assert lag_one["goal"] > 0.5 > abs(lag_one["uniform"]), lag_one


COLLECT_PRESETS = [p for p in sorted((Path(__file__).parent.parent / "configs").glob("*.yaml")) if "collect:" in p.read_text()]


@pytest.mark.parametrize("preset", COLLECT_PRESETS, ids=lambda p: p.name)
def test_collection_presets_name_their_scene(preset):
    from worldenv import config
    from worldenv.scenes import directory_name

    cfg = config.load(preset, "collect", CollectConfig)
    # At least 100k frames of budget; cartpole's episodes end when the pole falls, so
    # its 400 x 250 came to 55k frames and 277 falls. A gym: scene's preset is named by
    # `worldenv init` (gym:HalfCheetah-v5: halfcheetah.yaml).
    assert preset.stem == directory_name(cfg.scene) and cfg.episodes * cfg.steps_per_episode >= 100_000


def test_extra_datasets_train_beside_the_main_one_which_alone_holds_out(reacher_dataset, tmp_path):
    from worldenv.training.data import DataConfig

    extra = tmp_path / "extra"
    collect(CollectConfig(**{**TINY, "episodes": 2, "seed": 11}), extra, progress=False)
    alone = DataConfig(path=str(reacher_dataset), held_out_episodes=1)
    both = DataConfig(path=str(reacher_dataset), held_out_episodes=1, extra_paths=[str(extra)])
    own, added, joined = alone.load_training(), load_dataset(extra), both.load_training()
    assert joined.num_episodes == own.num_episodes + added.num_episodes == 4 + 2
    np.testing.assert_array_equal(joined.frames[own.num_frames :], added.frames)
    second = joined.episode_frames(own.num_episodes)  # the extra dataset's first episode
    np.testing.assert_array_equal(joined.actions[second], added.actions[added.episode_frames(0)])
    np.testing.assert_array_equal(both.load_held_out().frames, alone.load_held_out().frames)

    other = tmp_path / "cartpole"
    collect(CollectConfig(scene="cartpole", episodes=1, steps_per_episode=4, shard_size=1), other, progress=False)
    with pytest.raises(DatasetError, match="different scenes or shapes.*reacher.*cartpole"):
        DataConfig(path=str(reacher_dataset), held_out_episodes=1, extra_paths=[str(other)]).load_training()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_an_interrupted_collection_stops_cleanly(tmp_path, how):
    """Ctrl-C: one line saying what was kept and how to finish, exit status 130; killed:
    the workers end with the parent, silently. Neither prints a worker's traceback."""
    out = tmp_path / "interrupted"
    command = [
        sys.executable,
        "-m",
        "worldenv.cli",
        "collect",
        "--scene",
        "reacher",
        "--episodes",
        "8",
        "--steps",
        "12",
        "--shard-size",
        "1",
        "--workers",
        "2",
        "--no-progress",
        "--out",
        str(out),
    ]
    # Its own process group, as a shell gives a command: Ctrl-C signals the whole group.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((out / MANIFEST).exists() and Manifest.load(out).shards):
        time.sleep(0.05)
    if how == signal.SIGINT:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.kill()
    _, stderr = process.communicate(timeout=60)
    time.sleep(1.0)  # the workers' own exit
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr
    if how == signal.SIGINT:
        assert process.returncode == 130
        assert "collection interrupted with" in stderr and "rerun the same command to finish it" in stderr
    assert not Manifest.load(out).complete
    assert all("collection incomplete" in problem for problem in verify(out))  # the shards kept are whole
