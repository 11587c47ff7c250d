"""``worldenv collect``: run a scene under exploration policies in worker
processes and write the episodes as dataset shards.

Every episode's seeds derive from ``(seed, episode number)`` alone, so the
dataset does not depend on how many workers made it, and a rerun of the same
command finishes a killed collection: shards are written atomically and
recorded in the manifest with their sha256 as they complete; shards already
whole are kept, the rest are made again.
"""

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
from tqdm import tqdm

from worldenv import __version__
from worldenv.config import ConfigError
from worldenv.data.expert import SETTINGS as EXPERT_SETTINGS
from worldenv.data.expert import SB3Expert
from worldenv.data.format import DatasetError, Episode, Manifest, read_shard, record_shard, shard_name, write_shard
from worldenv.data.policies import POLICIES, make_policy
from worldenv.data.trained_policy import SETTINGS as TRAINED_SETTINGS
from worldenv.data.trained_policy import TrainedPolicy
from worldenv.io import sha256_file
from worldenv.scenes import make_scene, scene_class, scene_info, unwrapped_scene
from worldenv.scenes.gym_scene import GymScene

logger = logging.getLogger(__name__)


@dataclass
class CollectConfig:
    scene: str
    episodes: int
    steps_per_episode: int = 200
    policy: str = "mix"
    seed: int = 0
    shard_size: int = 20
    width: int = 64
    height: int = 64
    # Steps recorded after the step that terminates an episode, each labelled terminated:
    # without them no frame past the terminal state exists (a cartpole's pole beyond
    # 0.2 rad), a world model never draws one, and its dream never ends.
    frames_after_termination: int = 0
    # Proportions of the ``mix`` policy's components; None: the scene's own
    # (``exploration_mix`` in its class).
    exploration_mix: dict[str, float] | None = None
    # Under policy 'trained': the agent that acts (``trained_policy.py``), as
    # {path: policy.zip, checkpoint: the bundle whose probe it observes through, stack,
    # deterministic, sha256: the zip's, so that a resumed collection uses the same agent}.
    trained_policy: dict | None = None
    # For a gym: scene, the expert that its 'goal' policy follows (``expert.py``): an SB3
    # policy.zip acting on the env's observations, as {path, algo, deterministic}; the
    # manifest records its sha256 too.
    expert: dict | None = None

    def validate(self) -> None:
        try:
            scene_info(self.scene)
        except ValueError as error:
            raise ConfigError(f"scene: {error}") from None
        if self.policy not in POLICIES and self.policy != TrainedPolicy.name:
            raise ConfigError(
                f"policy: unknown policy {self.policy!r}; expected one of {sorted([*POLICIES, TrainedPolicy.name])}"
            )
        if (self.policy == TrainedPolicy.name) != (self.trained_policy is not None):
            raise ConfigError(
                f"trained_policy: expected settings exactly when policy is 'trained', got "
                f"policy {self.policy!r} and trained_policy {self.trained_policy!r}"
            )
        if self.trained_policy is not None:
            unknown = sorted(set(self.trained_policy) - {*TRAINED_SETTINGS, "sha256"})
            missing = sorted({"path", "checkpoint"} - set(self.trained_policy))
            if unknown or missing:
                raise ConfigError(
                    f"trained_policy: expected keys {list(TRAINED_SETTINGS)} (path and checkpoint "
                    f"required) and sha256; unknown {unknown}, missing {missing}"
                )
        for key in ("episodes", "steps_per_episode", "shard_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.exploration_mix is not None:
            if self.policy != "mix":
                raise ConfigError(f"exploration_mix: applies to policy 'mix', not {self.policy!r}")
            components = sorted(set(POLICIES) - {"mix"})
            if not self.exploration_mix or any(
                name not in components or not weight > 0 for name, weight in self.exploration_mix.items()
            ):
                raise ConfigError(f"exploration_mix: expected positive weights of {components}, got {self.exploration_mix!r}")
        if self.frames_after_termination < 0:
            raise ConfigError(f"frames_after_termination: expected an integer >= 0, got {self.frames_after_termination}")
        self._validate_expert()
        roams = self.policy == "roam" or "roam" in (self.exploration_mix or {})
        if roams and scene_class(self.scene).setpoint_range is None:
            raise ConfigError(
                f"policy: 'roam' steers the scene's expert to setpoints, and scene {self.scene!r} "
                "has no setpoint_range; expected a scene that has one (cartpole)"
            )

    def _validate_expert(self) -> None:
        if self.expert is None:
            mix = self.exploration_mix if self.exploration_mix is not None else scene_class(self.scene).exploration_mix
            if (self.policy == "goal" or (self.policy == "mix" and "goal" in mix)) and not scene_class(self.scene).has_expert:
                raise ConfigError(
                    f"policy: 'goal' follows the scene's expert, and scene {self.scene!r} has none of its own; "
                    "expected expert: {path: policy.zip, algo: ppo|sac|...} or a mix without 'goal'"
                )
            return
        if scene_class(self.scene).has_expert:
            raise ConfigError(f"expert: for gym: scenes, which have no expert of their own; {self.scene!r} has one")
        unknown, missing = sorted(set(self.expert) - set(EXPERT_SETTINGS)), "path" not in self.expert
        if unknown or missing:
            raise ConfigError(f"expert: expected keys {list(EXPERT_SETTINGS)} (path required); unknown {unknown}")
        if not Path(self.expert["path"]).is_file():
            raise ConfigError(f"expert.path: expected an SB3 policy .zip, {self.expert['path']} is not a file")

    @property
    def scene_kwargs(self) -> dict:
        return {"width": self.width, "height": self.height}


def episode_seeds(seed: int, episode: int) -> tuple[int, np.random.Generator]:
    """The env's reset seed and the policy's generator for one episode: independent
    streams, both fixed by ``(seed, episode)``."""
    sequence = np.random.SeedSequence([seed, episode])
    env_seed = int(sequence.generate_state(1, np.uint32)[0])
    return env_seed, np.random.default_rng(sequence.spawn(1)[0])


def run_episode(env, policy, config: CollectConfig, episode: int) -> Episode:
    env_seed, rng = episode_seeds(config.seed, episode)
    frame, info = env.reset(seed=env_seed)
    scene = env.unwrapped
    policy.reset(scene, rng)
    frames, states = [frame], [info["state"]]
    actions, rewards, terminated, truncated = [], [], [], []
    ended, steps_after = False, 0
    for _ in range(config.steps_per_episode):
        action = policy(scene)
        frame, reward, term, trunc, info = env.step(action)
        ended = term = ended or term  # past the terminal state, every step is terminal
        frames.append(frame)
        states.append(info["state"])
        actions.append(action)
        rewards.append([info[f"reward_{agent}"] for agent in scene.agents] if scene.agents else reward)
        terminated.append(term)
        truncated.append(trunc)
        if trunc or (ended and steps_after >= config.frames_after_termination):
            break
        steps_after += ended
    return Episode(
        frames=np.stack(frames),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.array(rewards, np.float32),
        terminated=np.array(terminated, bool),
        truncated=np.array(truncated, bool),
        states={key: np.stack([s[key] for s in states]) for key in states[0]},
        index=episode,
        seed=env_seed,
    )


def shard_plan(config: CollectConfig) -> list[tuple[int, int, int]]:
    """``(shard index, first episode, episode count)`` for every shard."""
    starts = range(0, config.episodes, config.shard_size)
    return [(i, first, min(config.shard_size, config.episodes - first)) for i, first in enumerate(starts)]


_worker_envs: dict[tuple, gymnasium.Env] = {}


def _collect_shard(job: tuple[CollectConfig, Path, int, int, int]):
    """Worker: make one shard. Each env (and its renderer) is built once per process."""
    config, out, index, first, count = job
    key = (config.scene, config.steps_per_episode, config.width, config.height)
    if key not in _worker_envs:
        _worker_envs[key] = make_scene(config.scene, max_episode_steps=config.steps_per_episode, **config.scene_kwargs)
    env = _worker_envs[key]
    if config.policy == TrainedPolicy.name:
        if config.trained_policy is None:
            raise ConfigError("trained_policy: expected settings with policy 'trained' (see CollectConfig.validate)")
        policy = TrainedPolicy(**{k: v for k, v in config.trained_policy.items() if k != "sha256"})
    else:
        policy = make_policy(config.policy)
    if config.policy == "mix":
        unwrapped_scene(env).exploration_mix = exploration_mix(config)
    if config.expert is not None:
        scene = unwrapped_scene(env)
        if not isinstance(scene, GymScene):
            raise ConfigError(f"expert: for gym: scenes only, not {config.scene!r} (see CollectConfig.validate)")
        scene.expert = SB3Expert(**config.expert)
    episodes = [run_episode(env, policy, config, e) for e in range(first, first + count)]
    write_shard(out / shard_name(index), episodes)
    return record_shard(out, index, first, episodes)


def collect(config: CollectConfig, out: Path, workers: int = 1, progress: bool = True) -> Manifest:
    """Collect (or finish collecting) ``config`` into directory ``out``. ``workers``: processes,
    each with its own renderer; 1 collects in this process."""
    out = Path(out)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(
            f"workers: expected a positive number of worker processes (1 collects in this process), got {workers!r}"
        )
    _check_out(out)
    # The manifest (and the scene, which checks the frame size) before the directory: a
    # refused setting leaves nothing behind.
    manifest = _open_manifest(config, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"{out}: cannot create the dataset directory ({error.strerror})") from error
    plan = shard_plan(config)
    manifest.shards = _whole_shards(manifest, plan, out)
    manifest.complete = False
    manifest.save(out)
    done = {s.file for s in manifest.shards}
    jobs = [(config, out, i, first, n) for i, first, n in plan if shard_name(i) not in done]
    if jobs:
        logger.info("collecting %d of %d shards of %s with %d worker(s)", len(jobs), len(plan), config.scene, workers)
    started, new_steps = time.perf_counter(), 0
    bar = tqdm(total=config.episodes, initial=manifest.episodes, unit="episode", disable=not progress, desc=config.scene)
    with bar:
        try:
            for record in _run(jobs, workers):
                manifest.shards.append(record)
                manifest.shards.sort(key=lambda s: s.first_episode)
                manifest.save(out)
                new_steps += record.steps
                bar.update(record.episodes)
        except KeyboardInterrupt:
            raise CollectionInterrupted(
                f"{out}: collection interrupted with {manifest.episodes} of {config.episodes} "
                "episodes kept; rerun the same command to finish it"
            ) from None
    manifest.complete = True
    manifest.save(out)
    if jobs:
        seconds = time.perf_counter() - started
        logger.info(
            "collected %d steps in %.1f s: %.0f frames/s with %d worker(s)", new_steps, seconds, new_steps / seconds, workers
        )
    return manifest


def _check_out(out: Path) -> None:
    """Refuse, before any episode is run, an ``out`` that cannot become a dataset directory."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a directory; expected a dataset directory or a new path")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise DatasetError(f"{out}: cannot create the dataset directory, {existing} is a file; expected a directory path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DatasetError(f"{out}: cannot write the dataset, {existing} is not writable; expected a writable --out")


def _run(jobs, workers: int):
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_collect_shard, jobs)
        return
    # spawn: each worker starts clean and makes its own OpenGL context (EGL
    # contexts do not survive a fork).
    _quiet_resource_tracker()
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_quiet_worker) as pool:
        yield from pool.imap_unordered(_collect_shard, jobs)


def _quiet_worker() -> None:
    """A worker leaves interruptions to the parent: Ctrl-C reaches the whole process group,
    and only the parent should answer it (with one line, not a traceback per worker); and
    a worker whose parent was killed is ended with it (Linux), where it would otherwise
    fail writing its shard's record to a closed pipe and print a traceback. A worker that
    writes to the closed pipe before that signal lands dies of SIGPIPE, as a Unix tool
    does, rather than of Python's BrokenPipeError."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _quiet_resource_tracker() -> None:
    """A killed collection leaves its pool's semaphores to multiprocessing's resource
    tracker, which frees them and warns that they leaked; the shards are whole and the
    rerun finishes the dataset, so the warning only alarms. The tracker is a child
    interpreter started with this one's ``-W`` options: this filter reaches it alone."""
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)


class CollectionInterrupted(RuntimeError):
    """Collection stopped by the user; every whole shard written so far is kept."""


def collection_settings(config: CollectConfig) -> dict:
    """What a dataset is collected with, as its manifest records it and a resumed
    collection must match: the config, and under the ``mix`` policy the scene's
    proportions, which live in the scene's code and may change between runs."""
    settings = asdict(config)
    if config.policy == "mix":
        settings["exploration_mix"] = exploration_mix(config)
    if config.expert is not None:
        settings["expert"] = {**config.expert, "sha256": sha256_file(Path(config.expert["path"]))}
    return settings


def exploration_mix(config: CollectConfig) -> dict[str, float]:
    """The ``mix`` policy's proportions: the config's, else the scene's own."""
    if config.exploration_mix is not None:
        return dict(config.exploration_mix)
    return dict(scene_class(config.scene).exploration_mix)


def _open_manifest(config: CollectConfig, out: Path) -> Manifest:
    settings = collection_settings(config)
    try:
        manifest = Manifest.load(out)
    except DatasetError:
        if any(out.glob("shard-*.npz")):
            raise DatasetError(f"{out}: holds shards but no readable manifest; refusing to overwrite them") from None
        env = make_scene(config.scene, **config.scene_kwargs)
        state = env.reset(seed=0)[1]["state"]
        scene = unwrapped_scene(env)  # its spaces are Boxes
        manifest = Manifest(
            scene=config.scene,
            scene_kwargs=config.scene_kwargs,
            collection=settings,
            versions={
                "worldenv": __version__,
                "mujoco": mujoco.__version__,
                "gymnasium": gymnasium.__version__,
                "numpy": np.__version__,
            },
            observation_shape=list(scene.observation_space.shape),
            action_dim=int(scene.action_space.shape[0]),
            state_dims={key: int(value.shape[0]) for key, value in state.items()},
        )
        env.close()
        return manifest
    for key, value in settings.items():
        if key != "episodes" and manifest.collection.get(key) != value:
            raise ConfigError(
                f"{out} was collected with {key}={manifest.collection.get(key)!r}, not {value!r}; "
                "use another --out or the same settings"
            )
    if config.episodes < manifest.collection["episodes"]:
        raise ConfigError(f"{out} was planned for {manifest.collection['episodes']} episodes; expected at least that many")
    manifest.collection = settings
    return manifest


def _whole_shards(manifest: Manifest, plan, out: Path):
    """Shards on disk that are sound and still match the plan: recorded ones whose
    checksum holds, and whole files a killed run wrote but did not record."""
    recorded = {s.file: s for s in manifest.shards}
    whole = []
    for index, first, count in plan:
        path = out / shard_name(index)
        if not path.is_file():
            continue
        record = recorded.get(path.name)
        if (
            record is not None
            and record.first_episode == first
            and record.episodes == count
            and sha256_file(path) == record.sha256
        ):
            whole.append(record)
            continue
        try:
            episodes = read_shard(path)
        except DatasetError as error:
            logger.warning("%s; collecting it again", error)
            continue
        if [e.index for e in episodes] == list(range(first, first + count)):
            whole.append(record_shard(out, index, first, episodes))
    return whole
