"""The training campaign's ledger: each training command appends its stage with its CPU
time, a fine-tuned bundle carries the stages before it, and the card shows the total."""

import shutil

import pytest
import yaml
from test_training import tiny_config

from worldenv import campaign
from worldenv.checkpoint import load_bundle
from worldenv.data.collect import CollectConfig, collect
from worldenv.eval.card import render_card
from worldenv.train import main as train_main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    collect(CollectConfig(scene="reacher", episodes=3, steps_per_episode=12, shard_size=3), out, progress=False)
    return out


def test_each_stage_is_recorded_and_a_fine_tune_carries_the_ones_before(tmp_path, dataset):
    config = tiny_config(tmp_path, dataset, tok_steps=4, teacher_steps=4)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    first = campaign.stages(load_bundle(tmp_path / "bundle").metadata)
    assert [s["component"] for s in first] == ["tokenizer", "teacher"]
    assert all(s["measured"] and s["cpu_hours"] > 0 for s in first)

    shutil.copytree(tmp_path / "bundle", tmp_path / "tuned")
    settings = yaml.safe_load(config.read_text())
    settings["teacher"].update(init_from=str(tmp_path / "bundle"), bundle=str(tmp_path / "tuned"), run=str(tmp_path / "run2"))
    settings["teacher"]["train"]["budget_cpu_minutes"] = 0.01
    tuned_config = tmp_path / "tuned.yaml"
    tuned_config.write_text(yaml.safe_dump(settings))
    assert train_main(["teacher", "--config", str(tuned_config), "--no-progress"]) == 0
    metadata = load_bundle(tmp_path / "tuned").metadata
    ledger = campaign.stages(metadata)
    assert ledger[:2] == first  # the start's teacher stage survives its record being replaced
    assert ledger[2]["component"] == "teacher" and ledger[2]["command"].endswith(f"--config {tuned_config} --no-progress")
    assert campaign.total_cpu_hours(ledger) == pytest.approx(sum(s["cpu_hours"] for s in ledger), abs=1e-3)
    card = render_card(metadata)
    assert "## Training campaign" in card and f"| 3 | teacher | `{ledger[2]['command']}`" in card


def test_a_bundle_from_before_the_ledger_gets_estimated_stages():
    metadata = {
        "tokenizer_training": {"command": "a", "steps": 10, "train_seconds": 1800.0, "threads": 2},
        "teacher_training": {"command": "b", "steps": 20, "train_seconds": 3600.0, "threads": 2, "processes": 1},
        "student_consistency_training": {"command": "c", "steps": 5, "train_cpu_seconds": 360.0},
        "probe_training": {"command": "d", "steps": 3},
    }
    ledger = campaign.stages(metadata)
    assert [s["component"] for s in ledger] == ["tokenizer", "teacher", "probe", "student_consistency"]
    assert [s["cpu_hours"] for s in ledger] == [1.0, 2.0, None, 0.1]
    assert [s["measured"] for s in ledger] == [False, False, False, True]
    assert campaign.total_cpu_hours(ledger) == 3.1
    assert "| 3 | probe | `d` | 3 | not recorded | 3.00 |" in campaign.ledger_table(ledger)


def test_the_curve_takes_each_scored_stage_at_its_cumulative_cpu_hours(tmp_path):
    entries = [
        {"component": "tokenizer", "cpu_hours": 1.0},
        {"component": "teacher", "cpu_hours": 2.0, "scores": {"gain_joint_angles_3": 0.3}},
        {"component": "teacher", "cpu_hours": 0.5, "scores": {"gain_joint_angles_3": 0.6, "psnr_margin_5": 2.0}},
    ]
    row = {
        "gains": {"3": {"joint_angles": 0.25}, "10": {"joint_angles": 0.5, "fingertip": 1.4}},
        "eval": {"horizons": {"5": {"psnr_margin": 1.5}, "15": {"joint_angles_ratio": 0.8}}},
    }
    assert campaign.curve_point(row) == {
        "gain_joint_angles_3": 0.25,
        "gain_joint_angles_10": 0.5,
        "psnr_margin_5": 1.5,
        "joint_angles_ratio_15": 0.8,
    }
    series = campaign.curve_series(entries)
    assert series["gain_joint_angles_3"] == ([3.0, 3.5], [0.3, 0.6])
    assert series["psnr_margin_5"] == ([3.5], [2.0]) and series["gain_joint_angles_10"] == ([], [])
    campaign.plot_curve(entries, tmp_path / "curve.png", "reacher")
    assert (tmp_path / "curve.png").stat().st_size > 5000


def test_campaign_command_records_the_ledger_in_the_card_and_draws_the_curve(tmp_path):
    """`worldenv campaign`: a bundle from before the ledger gets its stages written into its
    metadata and card; a recipe row's scores become its last stage's curve point."""
    import json

    from dream_bundles import tiny_dream_bundle

    from worldenv.checkpoint import update_bundle
    from worldenv.cli import main

    bundle = tiny_dream_bundle(tmp_path / "bundle")
    update_bundle(
        bundle,
        metadata={"teacher_training": {"command": "worldenv train teacher", "steps": 4, "train_seconds": 360.0, "threads": 2}},
    )
    row = tmp_path / "row.json"
    row.write_text(json.dumps({"gains": {"3": {"joint_angles": 0.3}}, "eval": {"horizons": {"5": {"psnr_margin": 1.5}}}}))
    assert main(["campaign", "--checkpoint", str(bundle), "--scores", str(row), "--plot", str(tmp_path / "curve.png")]) == 0
    metadata = load_bundle(bundle).metadata
    (stage,) = metadata["campaign"]
    assert stage["cpu_hours"] == pytest.approx(0.2) and stage["scores"]["gain_joint_angles_3"] == 0.3
    assert (
        "## Training campaign" in load_bundle(bundle).card
        and "| 1 | teacher | `worldenv train teacher`" in load_bundle(bundle).card
    )
    assert (tmp_path / "curve.png").stat().st_size > 5000
