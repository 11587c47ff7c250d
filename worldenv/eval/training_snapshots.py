"""Fidelity of a teacher against its training time: the EMA weights saved at several points
of one run (copies of its ``state.safetensors``), each evaluated with the bundle's tokenizer
and probe (``benchmarks/quality_vs_time.py`` plots and tables them)."""

import tempfile
from dataclasses import asdict
from pathlib import Path

from worldenv import config as configs
from worldenv.checkpoint import load_bundle, save_bundle
from worldenv.eval.evaluate import EvalConfig, evaluate
from worldenv.eval.probe import StateProbe
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.state_io import load_tree
from worldenv.training.teacher_task import TeacherTrainingConfig
from worldenv.world_model import load_tokenizer


def snapshot_bundle(bundle_path: Path, teacher_config: dict, snapshot: Path, into: Path) -> dict:
    """A bundle at ``into``: ``bundle_path``'s tokenizer and probe with the snapshot's EMA
    teacher; returns the snapshot's training step and wall-clock minutes."""
    bundle = load_bundle(bundle_path)
    tokenizer = load_tokenizer(bundle)
    probe = StateProbe(bundle.config("probe")["outputs"])
    bundle.load_into("probe", probe)
    teacher = Backbone(configs.build(BackboneConfig, teacher_config["model"], "teacher"))
    state = load_tree(snapshot)
    teacher.load_state_dict(state["ema"])
    save_bundle(
        into,
        {
            "tokenizer": (tokenizer, bundle.config("tokenizer")),
            "teacher": (teacher, teacher_config),
            "probe": (probe, bundle.config("probe")),
        },
        metadata=bundle.metadata,
    )
    return {"step": state["step"], "minutes": state["seconds"] / 60}


def snapshot_scores(bundle_path: Path, preset: Path, snapshots: list[Path], config: EvalConfig) -> list[dict]:
    """Per snapshot, in training order: its ``step``, ``minutes`` and ``evaluate``'s ``all``
    scores (the model beside copy-last-frame). ``preset``: the YAML the teacher was trained with."""
    trained = configs.load(preset, "teacher", TeacherTrainingConfig)
    teacher_config = {"model": asdict(trained.model), "context_noise": trained.context_noise}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for snapshot in sorted(snapshots, key=lambda p: load_tree(p)["step"]):
            info = snapshot_bundle(bundle_path, teacher_config, snapshot, Path(tmp) / snapshot.stem)
            report = evaluate(Path(tmp) / snapshot.stem, config)
            rows.append({**info, "all": report["all"]})
    return rows
