"""What the agent scripts share: the command line from a typed dataclass, the run's
log and summary, scoring a policy every K env steps during SB3 training, and ``main``."""

import contextlib
import dataclasses
import json
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import tyro
from stable_baselines3.common.callbacks import BaseCallback

from worldenv.dream_config import Commit, DreamConfig, Dtype

logger = logging.getLogger("agents")


def parse(cls, argv: list[str] | None = None, description: str = ""):
    """Build ``cls`` (a dataclass) from ``argv`` with tyro, as every agent script does: each
    field is a ``--flag`` (underscores as hyphens) with its type, default and
    ``field(metadata={"help": ...})``; a bool is ``--flag``/``--no-flag``, a list takes
    the values after its flag, a ``Literal`` one of its choices; ``--help`` lists every field."""
    return tyro.cli(cls, args=argv, description=description)


@dataclasses.dataclass
class ServingArgs:
    """How a script's dream is served; every agent script's arguments extend it."""

    model: str | None = dataclasses.field(
        default=None, metadata={"help": "bundle component that dreams; unset: the bundle's serving choice"}
    )
    sampling_steps: int | None = dataclasses.field(default=None, metadata={"help": "network evaluations per dreamed frame"})
    action_guidance: float | None = dataclasses.field(
        default=None,
        metadata={"help": "scale of the action's effect in the dream (1: as trained); unset: the bundle's serving choice"},
    )
    commit: Commit | None = dataclasses.field(
        default=None,
        metadata={
            "help": "what each dreamed frame leaves in the cache: latent or frame (re-encoded); "
            "unset: the bundle's serving choice"
        },
    )
    dtype: Dtype = dataclasses.field(
        default="auto",
        metadata={"help": "the networks' dtype: auto (float32 on the CPU), or bfloat16, about 2x faster on a CPU with AMX"},
    )

    def dream_config(self, **starts) -> DreamConfig:
        """The dream these arguments ask for; ``starts``: ``DreamConfig``'s start settings."""
        return DreamConfig(
            model=self.model,
            sampling_steps=self.sampling_steps,
            action_guidance=self.action_guidance,
            commit=self.commit,
            dtype=self.dtype,
            **starts,
        )

    def serving_args(self) -> dict:
        """These arguments alone, to build another script's (each extends ``ServingArgs``)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(ServingArgs)}


class RunLog:
    """``OUT/metrics.jsonl`` (one line per score, with the wall time since the start) and
    ``OUT/summary.json``."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.lines: list[dict] = []
        (self.out / "metrics.jsonl").write_text("")

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 1)

    def record(self, line: dict) -> dict:
        line = {"wall_seconds": self.seconds(), **line}
        with (self.out / "metrics.jsonl").open("a") as log:
            log.write(json.dumps(line) + "\n")
        logger.info("%s", line)
        return line

    def summarize(self, args, last: dict) -> dict:
        summary = {"args": dataclasses.asdict(args), **last, "wall_seconds": self.seconds()}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


@contextlib.contextmanager
def global_random_state_kept():
    """Whatever runs inside leaves Python's, NumPy's and torch's global generators as it found
    them: building a scoring env initialises networks from torch's generator, and SB3 draws
    its actions and minibatches from the same ones."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


class ScoreEvery(BaseCallback):
    """Calls ``score(env_steps)`` each time training passes another ``every`` env steps;
    ``per_env_step``: SB3 timesteps per env step (2 when each agent is an SB3 env). Scoring
    does not change what is trained: a run reaches the same policy whatever ``every`` is."""

    def __init__(self, every: int, score, per_env_step: int = 1):
        super().__init__()
        self.every, self.score, self.per_env_step = every, score, per_env_step
        self.next_score = every

    def _on_step(self) -> bool:
        env_steps = self.num_timesteps // self.per_env_step
        if env_steps >= self.next_score:
            self.next_score += self.every
            with global_random_state_kept():
                self.score(env_steps)
        return True


def main(args_class, run, doc: str, argv: list[str] | None = None) -> int:
    """Parse, run, print the summary (without its arguments) as one JSON line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    summary = run(parse(args_class, argv, description=doc.split("\n\n")[0]))
    print(json.dumps({k: v for k, v in summary.items() if k != "args"}))
    return 0


def exit_with(args_class, run, doc: str) -> None:
    sys.exit(main(args_class, run, doc))
