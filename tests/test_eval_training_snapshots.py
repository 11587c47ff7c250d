"""``worldenv.eval.training_snapshots``: a teacher's EMA snapshots, each scored with its
bundle's tokenizer and probe (``benchmarks/quality_vs_time.py`` plots them)."""

import torch
import yaml
from dream_bundles import tiny_dream_bundle

from worldenv.checkpoint import load_bundle
from worldenv.dream_config import DreamConfig
from worldenv.eval.evaluate import EvalConfig
from worldenv.eval.training_snapshots import snapshot_scores
from worldenv.state_io import save_tree
from worldenv.world_model import load_backbone


def test_each_snapshot_is_scored_in_training_order_with_its_own_weights(tmp_path):
    torch.set_num_threads(1)
    bundle_path = tiny_dream_bundle(tmp_path / "cartpole", "cartpole", probe_outputs=3)
    bundle = load_bundle(bundle_path)
    preset = tmp_path / "preset.yaml"
    preset.write_text(
        yaml.safe_dump(
            {"teacher": {"data": {"path": "data"}, "bundle": "b", "run": "r", "model": bundle.config("teacher")["model"]}}
        )
    )
    trained = load_backbone(bundle).state_dict()
    untrained = {name: torch.zeros_like(value) for name, value in trained.items()}
    later, earlier = tmp_path / "later.safetensors", tmp_path / "earlier.safetensors"
    save_tree(later, {"ema": trained, "step": 20, "seconds": 120.0})
    save_tree(earlier, {"ema": untrained, "step": 10, "seconds": 60.0})
    config = EvalConfig(
        episodes=1,
        horizon=2,
        policies=("uniform",),
        dream=DreamConfig(model="teacher", sampling_steps=1, action_guidance=1.0, commit="latent"),
    )
    rows = snapshot_scores(bundle_path, preset, [later, earlier], config)
    assert [(row["step"], row["minutes"]) for row in rows] == [(10, 1.0), (20, 2.0)]
    scores = [row["all"]["model"]["1"]["psnr"] for row in rows]
    assert scores[0] != scores[1]  # each snapshot's own teacher dreamed
    assert rows[0]["all"]["copy_last"] == rows[1]["all"]["copy_last"]  # the same real episodes
