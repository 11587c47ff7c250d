"""The training loop every model shares: AdamW with warm-up and cosine decay,
gradient clipping, EMA weights, a JSONL metrics log, a progress bar, periodic
checkpoints that resume exactly, and data parallelism under ``torchrun``.

Exact resume without saving data-loader state: every step draws its batch and
noise from generators seeded by ``(seed, rank, step)``, so step ``n`` is the same
computation whether or not the run was killed before it. The checkpoint holds
the model, EMA, optimizer, step and accumulated wall time, as safetensors +
JSON (``worldenv.state_io``), written atomically.
"""

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from worldenv.state_io import load_tree, save_tree
from worldenv.training.ema import EMA

logger = logging.getLogger(__name__)
STATE = "state.safetensors"
METRICS = "metrics.jsonl"
Precision = Literal["float32", "bfloat16"]


@dataclass
class TrainConfig:
    steps: int = 10000
    batch: int = 32  # per process
    lr: float = 1e-3
    warmup: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 50
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"  # "auto": this process's CUDA device if there is one, else the CPU
    # "bfloat16": autocast the forward and loss to bfloat16 (weights stay float32). The
    # same names as the dream's dtype (worldenv.dream_config.Dtype).
    precision: Precision = "float32"
    # Train until the process has used this much CPU time (all its threads), with the
    # cosine schedule spread over the budget instead of ``steps`` (then an upper bound):
    # recipes compared for the same compute, whatever else shares the machine. A budget
    # run resumes where it stopped, but its learning rate follows CPU time, so it is not
    # the same computation bit for bit as an uninterrupted one.
    budget_cpu_minutes: float | None = None

    def validate(self) -> None:
        from worldenv.config import ConfigError

        for key in ("steps", "batch", "log_every", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay: expected a value in [0, 1), got {self.ema_decay}")
        if self.budget_cpu_minutes is not None and not self.budget_cpu_minutes > 0:
            raise ConfigError(f"budget_cpu_minutes: expected a positive number of minutes or null, got {self.budget_cpu_minutes}")
        if self.precision not in get_args(Precision):
            raise ConfigError(f"precision: expected one of {list(get_args(Precision))}, got {self.precision!r}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")


class Task(Protocol):
    """What the loop trains: a model and a loss on a batch that the task draws itself, on
    the model's device; the metrics are detached scalars, read on the host only when logged."""

    model: nn.Module

    def loss(self, model: nn.Module, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def export(self, ema_model: nn.Module, metadata: dict) -> None: ...


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_environment(cls) -> "Distributed":
        """Join the process group that ``torchrun`` describes, if any (gloo on CPU, nccl on CUDA)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(int(os.environ.get("RANK", "0")), world)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, wanted: str) -> torch.device:
        """``auto``: CUDA device ``LOCAL_RANK`` when CUDA is there, else the CPU."""
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted == "cuda":
            wanted = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return torch.device(wanted)


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The only source of randomness of one training step on one process."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> np.uint64(1)))


def learning_rate(config: TrainConfig, step: int, cpu_seconds: float = 0.0) -> float:
    """Linear warm-up over ``config.warmup`` steps, then a cosine decay to a tenth over the
    remaining steps, or over the CPU budget when there is one."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    if config.budget_cpu_minutes is not None:
        progress = cpu_seconds / (60.0 * config.budget_cpu_minutes)
    else:
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(
    task: Task,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    metadata: dict,
    progress: bool = True,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> dict:
    """Train ``task.model`` for ``config.steps`` steps in ``run_dir``; export the EMA
    weights with ``task.export``. Returns the last logged metrics. ``on_checkpoint(run_dir)``
    runs on the main process after each checkpoint is saved (the CLI draws the training
    curve there), so the loop itself knows nothing of reporting."""
    run_dir = Path(run_dir)
    group = Distributed.from_environment()
    device = group.device(config.device)
    model = task.model.to(device)
    ema = EMA(model, config.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, seconds, cpu_seconds = 0, 0.0, 0.0
    if (run_dir / STATE).exists():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another run directory")
        state = load_tree(run_dir / STATE)
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step, seconds, cpu_seconds = state["step"], state["seconds"], state.get("cpu_seconds", 0.0)
        logger.info("resuming %s at step %d", run_dir, step)
    elif resume:
        logger.info("%s holds no checkpoint yet; starting from step 0", run_dir)
    if group.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _truncate_log(run_dir / METRICS, step)
    wrapped: nn.Module
    if group.world > 1:
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        wrapped = model
    logger.info("training on %s in %s", device, config.precision)
    last: dict = {}
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and group.main), unit="step")
    started = time.perf_counter() - seconds
    cpu_started = time.process_time() - cpu_seconds

    def cpu_used() -> float:
        return time.process_time() - cpu_started

    def within_budget() -> bool:
        return config.budget_cpu_minutes is None or cpu_used() < 60.0 * config.budget_cpu_minutes

    while step < config.steps and within_budget():
        lr = learning_rate(config, step, cpu_used())
        for group_ in optimizer.param_groups:
            group_["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
            loss, metrics = task.loss(wrapped, config.batch, step_generator(config.seed, group.rank, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        ema.update(model, step)
        step += 1
        bar.update(1)
        finished = step == config.steps or not within_budget()
        if group.main and (step % config.log_every == 0 or finished):
            elapsed = time.perf_counter() - started
            last = {
                "step": step,
                "loss": float(loss.detach()),
                "grad_norm": float(grad_norm),
                "lr": lr,
                "seconds": round(elapsed, 2),
                "cpu_seconds": round(cpu_used(), 2),
                **{key: float(value) for key, value in metrics.items()},
            }
            with open(run_dir / METRICS, "a") as log:
                log.write(json.dumps(last) + "\n")
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if group.main and (step % config.checkpoint_every == 0 or finished):
            state = {
                "model": model.state_dict(),
                "ema": ema.model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "seconds": time.perf_counter() - started,
                "cpu_seconds": cpu_used(),
            }
            save_tree(run_dir / STATE, state)
            if on_checkpoint is not None:
                on_checkpoint(run_dir)
    bar.close()
    if group.main:
        task.export(
            ema.model.cpu(),
            {
                **metadata,
                "steps": step,
                "train_seconds": round(time.perf_counter() - started, 1),
                "train_cpu_seconds": round(cpu_used(), 1),
                "processes": group.world,
                "device": str(device),
                "precision": config.precision,
                "final_metrics": last,
            },
        )
    if group.world > 1:
        dist.barrier()
    return last


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))
