"""Training the state probe on real frames into the bundle (no EMA or resume
needed: a few minutes of supervised regression)."""

import time
from dataclasses import dataclass
from pathlib import Path

from worldenv.checkpoint import update_bundle
from worldenv.eval.probe import QUANTITIES, train_probe
from worldenv.training.data import DataConfig


@dataclass
class ProbeTrainingConfig:
    data: DataConfig
    bundle: str
    run: str = ""  # unused: the probe keeps no run directory (accepted so --run works for every task)
    steps: int = 3000
    batch: int = 64
    seed: int = 0
    width: int = 32  # channels of the first convolution (doubling twice): 16 makes a 4x smaller probe


def train_probe_into_bundle(config: ProbeTrainingConfig, metadata: dict, progress: bool = True) -> None:
    dataset = config.data.load_training()
    started, cpu_started = time.perf_counter(), time.process_time()
    probe = train_probe(dataset, steps=config.steps, batch=config.batch, seed=config.seed, progress=progress, width=config.width)
    seconds, cpu_seconds = round(time.perf_counter() - started, 1), round(time.process_time() - cpu_started, 1)
    scene = dataset.manifest.scene
    quantities = [q.name for q in QUANTITIES[scene]]
    update_bundle(
        Path(config.bundle),
        components={
            "probe": (
                probe,
                {"outputs": int(probe.mean.shape[0]), "width": config.width, "scene": scene, "quantities": quantities},
            )
        },
        metadata={
            "probe_training": {**metadata, "steps": config.steps, "train_seconds": seconds, "train_cpu_seconds": cpu_seconds}
        },
    )
