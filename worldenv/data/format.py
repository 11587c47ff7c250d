"""The on-disk dataset: a manifest plus shards of whole episodes.

Layout of a dataset directory::

    manifest.json         scene, versions, collection settings, shard list with sha256
    shard-00000.npz       episodes [0, K)        (K = shard_size)
    shard-00001.npz       episodes [K, 2K) ...

A shard is a deflate-compressed ``.npz`` (numpy arrays only, loaded with
``allow_pickle=False``) whose arrays hold its episodes back to back. For E episodes with
T_e steps each (frames: T_e + 1, the reset frame included):

=====================  =========================  ==================================
key                    shape                      meaning
=====================  =========================  ==================================
``frames``             (sum T_e+1, H, W, 3) uint8 observations, reset frame first
``actions``            (sum T_e, A) float32       action taken after frame t
``rewards``            (sum T_e,) float32         reward of that step; (sum T_e, K) for a
                                                  scene with K agents, one each
``terminated``         (sum T_e,) bool            step ended the episode (MDP end), or
                                                  followed one that did
                                                  (``frames_after_termination``)
``truncated``          (sum T_e,) bool            step hit the time limit
``state_qpos`` ...     (sum T_e+1, d) float64     true MuJoCo state at each frame
``episode_steps``      (E,) int64                 T_e
``episode_index``      (E,) int64                 global episode number
``episode_seed``       (E,) int64                 seed of the episode's reset
=====================  =========================  ==================================

Why not Minari: docs/experiments/2026-11-28-ground-truth-and-data.md measures it (``worldenv bench storage``); its
episode-per-group HDF5 with one writer per dataset is slower to sample windows
from, cannot be written by several worker processes at once, and has no
per-file checksum to resume or to name a corrupted file with.
"""

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from worldenv.io import atomic_write, atomic_write_json, sha256_file

FORMAT = "worldenv-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STATE_KEYS = ("qpos", "qvel", "task")


class DatasetError(RuntimeError):
    """A dataset file is missing, truncated, corrupted, or not what was asked for."""


@dataclass
class Episode:
    frames: np.ndarray  # (T+1, H, W, 3) uint8
    actions: np.ndarray  # (T, A) float32
    rewards: np.ndarray  # (T,) float32, or (T, K) with one per agent
    terminated: np.ndarray  # (T,) bool
    truncated: np.ndarray  # (T,) bool
    states: dict[str, np.ndarray]  # key -> (T+1, d) float64
    index: int
    seed: int

    @property
    def steps(self) -> int:
        return len(self.actions)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npz"


def write_shard(path: Path, episodes: list[Episode]) -> None:
    arrays = {
        "frames": np.concatenate([e.frames for e in episodes]),
        "actions": np.concatenate([e.actions for e in episodes]).astype(np.float32),
        "rewards": np.concatenate([e.rewards for e in episodes]).astype(np.float32),
        "terminated": np.concatenate([e.terminated for e in episodes]).astype(bool),
        "truncated": np.concatenate([e.truncated for e in episodes]).astype(bool),
        "episode_steps": np.array([e.steps for e in episodes], np.int64),
        "episode_index": np.array([e.index for e in episodes], np.int64),
        "episode_seed": np.array([e.seed for e in episodes], np.int64),
    }
    for key in STATE_KEYS:
        arrays[f"state_{key}"] = np.concatenate([e.states[key] for e in episodes])

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            # numpy's stub lets a ** key reach its `allow_pickle: bool`; no key here has that name
            # (and naming allow_pickle would store it as an array on numpy < 2.1).
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def read_shard(path: Path) -> list[Episode]:
    """Read a shard, refusing (with the file's name) anything that is not a whole one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise DatasetError(f"{path}: not a readable dataset shard ({error})") from error
    required = {"frames", "actions", "rewards", "terminated", "truncated", "episode_steps", "episode_index", "episode_seed"}
    missing = required.union(f"state_{k}" for k in STATE_KEYS) - set(arrays)
    if missing:
        raise DatasetError(f"{path}: shard lacks arrays {sorted(missing)}")
    steps = arrays["episode_steps"]
    if len(arrays["actions"]) != steps.sum() or len(arrays["frames"]) != steps.sum() + len(steps):
        raise DatasetError(f"{path}: array lengths disagree with episode_steps")
    step_ends, frame_ends = np.cumsum(steps), np.cumsum(steps + 1)
    episodes = []
    for e, (t, f) in enumerate(zip(step_ends, frame_ends)):
        s, g = t - steps[e], f - steps[e] - 1
        episodes.append(
            Episode(
                frames=arrays["frames"][g:f],
                actions=arrays["actions"][s:t],
                rewards=arrays["rewards"][s:t],
                terminated=arrays["terminated"][s:t],
                truncated=arrays["truncated"][s:t],
                states={k: arrays[f"state_{k}"][g:f] for k in STATE_KEYS},
                index=int(arrays["episode_index"][e]),
                seed=int(arrays["episode_seed"][e]),
            )
        )
    return episodes


@dataclass
class ShardRecord:
    file: str
    first_episode: int
    episodes: int
    steps: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    scene: str
    scene_kwargs: dict
    collection: dict  # the CollectConfig that made it (minus where it was written)
    versions: dict[str, str]
    observation_shape: list[int]
    action_dim: int
    state_dims: dict[str, int]
    shards: list[ShardRecord] = field(default_factory=list)
    complete: bool = False
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.shards)

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.shards)

    def save(self, directory: Path) -> None:
        atomic_write_json(Path(directory) / MANIFEST, asdict(self))

    @classmethod
    def load(cls, directory: Path) -> "Manifest":
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise DatasetError(f"{path}: no manifest; is {directory} a dataset made by `worldenv collect`?")
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
                raise DatasetError(
                    f"{path}: expected format {FORMAT} v{FORMAT_VERSION}, got {raw.get('format')} v{raw.get('format_version')}"
                )
            raw["shards"] = [ShardRecord(**s) for s in raw["shards"]]
            return cls(**raw)
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise DatasetError(f"{path}: unreadable manifest ({error})") from error


def record_shard(directory: Path, index: int, first_episode: int, episodes: list[Episode]) -> ShardRecord:
    path = Path(directory) / shard_name(index)
    return ShardRecord(
        file=path.name,
        first_episode=first_episode,
        episodes=len(episodes),
        steps=sum(e.steps for e in episodes),
        bytes=path.stat().st_size,
        sha256=sha256_file(path),
    )


def verify(directory: Path) -> list[str]:
    """Every problem with a dataset directory, one line each naming the file; empty if sound."""
    directory = Path(directory)
    try:
        manifest = Manifest.load(directory)
    except DatasetError as error:
        return [str(error)]
    problems = (
        [] if manifest.complete else [f"{directory / MANIFEST}: collection incomplete (rerun `worldenv collect` to finish it)"]
    )
    for shard in manifest.shards:
        path = directory / shard.file
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != shard.bytes:
            problems.append(f"{path}: {path.stat().st_size} bytes, expected {shard.bytes} (truncated?)")
        elif sha256_file(path) != shard.sha256:
            problems.append(f"{path}: sha256 mismatch (corrupted)")
    return problems
