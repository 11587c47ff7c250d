"""Training on tiny configs: losses fall, runs resume exactly after SIGKILL, DDP runs on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from worldenv.checkpoint import load_bundle
from worldenv.config import ConfigError
from worldenv.data.collect import CollectConfig, collect
from worldenv.eval.card import render_card
from worldenv.train import main as train_main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def tiny_config(root: Path, dataset: Path, tok_steps: int = 30, teacher_steps: int = 60) -> Path:
    config = {
        "tokenizer": {
            "data": {"path": str(dataset), "held_out_episodes": 1},
            "bundle": str(root / "bundle"),
            "run": str(root / "runs" / "tokenizer"),
            "model": {"channels": [8, 8, 16], "latent_channels": 4},
            "train": {"steps": tok_steps, "batch": 4, "lr": 0.003, "warmup": 2, "log_every": 2, "checkpoint_every": 5},
        },
        "consistency": {
            "data": {"path": str(dataset), "held_out_episodes": 1},
            "bundle": str(root / "bundle"),
            "run": str(root / "runs" / "consistency"),
            "intervals": 4,
            "train": {"steps": 40, "batch": 4, "lr": 0.001, "warmup": 2, "log_every": 2, "checkpoint_every": 20},
        },
        "dmd": {
            "data": {"path": str(dataset), "held_out_episodes": 1},
            "bundle": str(root / "bundle"),
            "run": str(root / "runs" / "dmd"),
            "train": {"steps": 80, "batch": 8, "lr": 0.0003, "warmup": 2, "log_every": 4, "checkpoint_every": 40},
        },
        "self-forcing": {
            "data": {"path": str(dataset), "held_out_episodes": 1},
            "bundle": str(root / "bundle"),
            "run": str(root / "runs" / "self-forcing"),
            "rollout_frames": 2,
            "train": {"steps": 80, "batch": 8, "lr": 0.0003, "warmup": 2, "log_every": 4, "checkpoint_every": 40},
        },
        "teacher": {
            "data": {"path": str(dataset), "held_out_episodes": 1},
            "bundle": str(root / "bundle"),
            "run": str(root / "runs" / "teacher"),
            "model": {
                "latent_channels": 4,
                "grid": 8,
                "action_dim": 2,
                "width": 32,
                "depth": 1,
                "heads": 2,
                "sink_frames": 1,
                "window_frames": 2,
            },
            "train": {"steps": teacher_steps, "batch": 4, "lr": 0.01, "warmup": 2, "log_every": 2, "checkpoint_every": 20},
        },
    }
    path = root / "tiny.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    collect(CollectConfig(scene="reacher", episodes=4, steps_per_episode=16, shard_size=4), out, progress=False)
    return out


def losses(run: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (run / "metrics.jsonl").read_text().splitlines()]


def falls(curve: list[float], factor: float) -> bool:
    """The mean of the last five logged values is below ``factor`` times that of the first five."""
    return sum(curve[-5:]) < factor * sum(curve[:5])


def test_tokenizer_then_teacher_train_into_one_bundle(tmp_path, dataset):
    config = tiny_config(tmp_path, dataset)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    tok, teach = losses(tmp_path / "runs" / "tokenizer"), losses(tmp_path / "runs" / "teacher", "diffusion")
    assert len(tok) == 15 and falls(tok, 0.7), tok
    assert len(teach) == 30 and falls(teach, 0.85), teach
    bundle = load_bundle(tmp_path / "bundle")
    assert set(bundle.components) == {"tokenizer", "teacher"}
    assert bundle.metadata["scene"] == "reacher"
    assert bundle.metadata["teacher_training"]["steps"] == 60
    assert (
        bundle.metadata["tokenizer_training"]["command"] == f"python -m worldenv.train tokenizer --config {config} --no-progress"
    )
    assert len(bundle.metadata["teacher_training"]["dataset"]["manifest_sha256"]) == 64
    assert len(list((dataset / ".latents").glob("*.safetensors"))) >= 1  # beside the data, for every run on it
    assert (tmp_path / "runs" / "teacher" / "curve.png").stat().st_size > 5000


def test_decoder_only_keeps_every_latent_and_trains_the_decoder(tmp_path, dataset):
    """``decoder_only``: the bundle's encoder and latent statistics come back bit for bit (the
    world models' latents stay valid), the decoder moves and its loss falls, the first
    training record is kept; a network of another shape is refused, naming the key."""
    from worldenv.world_model import load_tokenizer

    config = tiny_config(tmp_path, dataset, tok_steps=10)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    before = load_tokenizer(load_bundle(tmp_path / "bundle")).state_dict()
    preset = yaml.safe_load(config.read_text())
    preset["tokenizer"].update(decoder_only=True, run=str(tmp_path / "runs" / "decoder"))
    preset["tokenizer"]["model"]["edge_weight"] = 20.0  # a loss setting may differ
    preset["tokenizer"]["train"]["steps"] = 30
    config.write_text(yaml.safe_dump(preset))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0

    bundle = load_bundle(tmp_path / "bundle")
    after = load_tokenizer(bundle).state_dict()
    for name, value in before.items():
        kept = name.startswith("encoder.") or name.startswith("latent_")
        assert torch.equal(value, after[name]) == kept, name
    assert falls(losses(tmp_path / "runs" / "decoder"), 0.9)
    assert bundle.metadata["tokenizer_training"]["steps"] == 10
    assert bundle.metadata["tokenizer_decoder_training"]["steps"] == 30

    preset["tokenizer"]["model"]["latent_channels"] = 8
    preset["tokenizer"]["run"] = str(tmp_path / "runs" / "other")
    config.write_text(yaml.safe_dump(preset))
    with pytest.raises(ConfigError, match="tokenizer.model.latent_channels"):
        train_main(["tokenizer", "--config", str(config), "--no-progress"])


def test_bfloat16_autocast_trains_and_records_device_and_precision(tmp_path, dataset):
    config = tiny_config(tmp_path, dataset, tok_steps=10, teacher_steps=20)
    raw = yaml.safe_load(config.read_text())
    for section in ("tokenizer", "teacher"):
        raw[section]["train"].update(precision="bfloat16", device="cpu")
    raw["tokenizer"]["model"]["latent_noise"] = 0.1
    config.write_text(yaml.safe_dump(raw))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    teach = losses(tmp_path / "runs" / "teacher", "diffusion")
    assert all(value == value and value < 10 for value in teach)  # finite
    metadata = load_bundle(tmp_path / "bundle").metadata["teacher_training"]
    assert metadata["precision"] == "bfloat16" and metadata["device"] == "cpu"
    weights = load_bundle(tmp_path / "bundle").state_dict("teacher")
    assert all(tensor.dtype == torch.float32 for tensor in weights.values())


def test_existing_run_needs_resume(tmp_path, dataset):
    config = tiny_config(tmp_path, dataset, tok_steps=5)
    train_main(["tokenizer", "--config", str(config), "--no-progress"])
    with pytest.raises(FileExistsError, match="--resume"):
        train_main(["tokenizer", "--config", str(config), "--no-progress"])


def test_killed_run_resumes_exactly(tmp_path, dataset):
    """SIGKILL a run after a checkpoint, resume it: the weights equal an uninterrupted run's."""
    command = [sys.executable, "-m", "worldenv.train", "tokenizer", "--no-progress"]
    straight = tiny_config(tmp_path / "straight", dataset, tok_steps=40)
    subprocess.run([*command, "--config", str(straight)], check=True, env=ENV, capture_output=True)

    killed = tiny_config(tmp_path / "killed", dataset, tok_steps=40)
    state = tmp_path / "killed" / "runs" / "tokenizer" / "state.safetensors"
    process = subprocess.Popen([*command, "--config", str(killed)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "bundle").exists(), "killed before the end: nothing exported yet"
    subprocess.run([*command, "--config", str(killed), "--resume"], check=True, env=ENV, capture_output=True)

    a = load_bundle(tmp_path / "straight" / "bundle").state_dict("tokenizer")
    b = load_bundle(tmp_path / "killed" / "bundle").state_dict("tokenizer")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert losses(tmp_path / "straight" / "runs" / "tokenizer") == losses(tmp_path / "killed" / "runs" / "tokenizer")


def test_torchrun_data_parallel_on_two_cpu_processes(tmp_path, dataset):
    config = tiny_config(tmp_path, dataset, tok_steps=6)
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "worldenv.train",
            "tokenizer",
            "--config",
            str(config),
            "--no-progress",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.metadata["tokenizer_training"]["processes"] == 2
    assert len(losses(tmp_path / "runs" / "tokenizer")) == 3


def test_config_errors_name_the_key(tmp_path, dataset):
    config = tiny_config(tmp_path, dataset)
    document = yaml.safe_load(config.read_text())
    document["tokenizer"]["train"]["stpes"] = 3
    config.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"tokenizer.train: unknown key 'stpes'"):
        train_main(["tokenizer", "--config", str(config)])
    document["tokenizer"]["train"].pop("stpes")
    document["teacher"]["model"]["latent_channels"] = 5
    config.write_text(yaml.safe_dump(document))
    train_main(["tokenizer", "--config", str(config), "--steps", "2", "--no-progress"])
    with pytest.raises(ConfigError, match=r"teacher.model.latent_channels: 5 does not match"):
        train_main(["teacher", "--config", str(config)])
    document["teacher"]["time_distribution"] = "beta"
    config.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"teacher.time_distribution: expected 'uniform' or 'logit_normal', got 'beta'"):
        train_main(["teacher", "--config", str(config)])
    document["teacher"].pop("time_distribution")
    document["teacher"]["train"]["precision"] = "fp8"
    config.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"precision: expected one of \['float32', 'bfloat16'\], got 'fp8'"):
        train_main(["teacher", "--config", str(config)])


ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "preset",
    sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("benchmarks/configs/*.yaml")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_shipped_preset_builds(preset):
    """Each section of each preset, and of each experiment's config in benchmarks/, is a
    valid typed config (a typo fails here, not hours into a run)."""
    from worldenv import config as configs
    from worldenv.data.collect import CollectConfig
    from worldenv.distill.consistency import ConsistencyConfig
    from worldenv.distill.dmd import DMDConfig
    from worldenv.distill.self_forcing import SelfForcingConfig
    from worldenv.training.probe_task import ProbeTrainingConfig
    from worldenv.training.teacher_task import TeacherTrainingConfig
    from worldenv.training.tokenizer_task import TokenizerTrainingConfig

    sections = {
        "collect": CollectConfig,
        "tokenizer": TokenizerTrainingConfig,
        "teacher": TeacherTrainingConfig,
        "probe": ProbeTrainingConfig,
        "consistency": ConsistencyConfig,
        "dmd": DMDConfig,
        "self-forcing": SelfForcingConfig,
    }
    document = configs.read_document(preset)
    assert document and set(document) <= set(sections)
    for section in document:
        built = configs.load(preset, section, sections[section])
        if section in ("tokenizer", "teacher", "consistency", "dmd", "self-forcing"):
            built.train.validate()


def test_gpu_script_is_valid_bash():
    script = Path(__file__).parent.parent / "scripts" / "gpu_train.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.parametrize(
    "method, learning_curve", [("consistency", "consistency"), ("dmd", "fake_gain"), ("self-forcing", "fake_gain")]
)
def test_student_distils_into_the_bundle_and_dreams_in_one_step(tmp_path, dataset, method, learning_curve):
    """What must improve: the consistency loss falls; for DMD the fake score comes to fit the
    student's samples better than the teacher does (its flow-matching gain over the teacher on
    the same noised samples rises above zero). DMD's matching loss chases a moving target."""
    from worldenv.cli import main as cli_main
    from worldenv.world_model import WorldModel

    config = tiny_config(tmp_path, dataset, tok_steps=10, teacher_steps=20)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    assert cli_main(["distill", "--method", method, "--config", str(config), "--no-progress"]) == 0
    curve = losses(tmp_path / "runs" / method, learning_curve)
    improves = falls(curve, 0.8) if method == "consistency" else sum(curve[-5:]) > max(0.0, sum(curve[:5]))
    assert len(curve) == 20 and improves, curve
    bundle = load_bundle(tmp_path / "bundle")
    component = f"student_{method}"
    assert component in bundle.components
    record = bundle.config(component)
    assert record["method"] == method and record["sampling_steps"] == 1 and record["teacher"] == "teacher"
    assert bundle.metadata[f"{component}_training"]["command"].startswith(f"worldenv distill --method {method}")
    assert bundle.class_name(component) == "Backbone"  # DMD exports the student alone, not its fake score

    def dream():
        model = WorldModel.from_bundle(tmp_path / "bundle", batch=2, model=component, sampling_steps=1)
        frames = torch.zeros(2, 3, 64, 64, 3, dtype=torch.uint8)
        model.reset(frames, torch.zeros(2, 3, 2), seeds=[1, 2])
        return torch.stack([model.step(torch.ones(2, 2))[0] for _ in range(3)])

    first, second = dream(), dream()
    assert first.shape == (3, 2, 64, 64, 3) and torch.equal(first, second)


def test_self_forcing_starts_from_the_student_named_by_student_init(tmp_path, dataset):
    """``student_init: student_consistency``: the Self-Forcing student is a copy of the
    consistency student, its fake score a copy of the teacher; a name the bundle lacks is
    refused with the names on offer, a component of another kind with what was expected."""
    from worldenv import config as configs
    from worldenv.cli import main as cli_main
    from worldenv.distill.self_forcing import SelfForcingConfig, SelfForcingDistillation
    from worldenv.world_model import load_backbone

    config = tiny_config(tmp_path, dataset, tok_steps=10, teacher_steps=10)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    assert cli_main(["distill", "--method", "consistency", "--config", str(config), "--steps", "6", "--no-progress"]) == 0
    bundle = load_bundle(tmp_path / "bundle")
    consistency, teacher = load_backbone(bundle, "student_consistency"), load_backbone(bundle, "teacher")

    task = SelfForcingDistillation(
        configs.load(config, "self-forcing", SelfForcingConfig, {"student_init": "student_consistency"})
    )
    for name, value in task.model.student.state_dict().items():
        assert torch.equal(value, consistency.state_dict()[name]), name
    for name, value in task.model.fake.state_dict().items():
        assert torch.equal(value, teacher.state_dict()[name]), name
    assert any(not torch.equal(v, teacher.state_dict()[k]) for k, v in consistency.state_dict().items())

    with pytest.raises(ConfigError, match=r"student_init: expected a component of .*student_consistency.*got 'student_nope'"):
        SelfForcingDistillation(configs.load(config, "self-forcing", SelfForcingConfig, {"student_init": "student_nope"}))
    with pytest.raises(ConfigError, match="student_init: 'tokenizer' is a Tokenizer, expected a Backbone like the teacher"):
        SelfForcingDistillation(configs.load(config, "self-forcing", SelfForcingConfig, {"student_init": "tokenizer"}))

    with pytest.raises(ConfigError, match=r"commit: expected one of \('latent', 'frame'\), got 'pixels'"):
        SelfForcingDistillation(configs.load(config, "self-forcing", SelfForcingConfig, {"commit": "pixels"}))

    # Rolled out as a frame-committing dream serves: each frame re-encoded before the next.
    document = yaml.safe_load(config.read_text())
    document["self-forcing"].update(student_init="student_consistency", commit="frame")
    config.write_text(yaml.safe_dump(document))
    assert cli_main(["distill", "--method", "self-forcing", "--config", str(config), "--steps", "4", "--no-progress"]) == 0
    record = load_bundle(tmp_path / "bundle").config("student_self-forcing")
    assert record["distillation"]["student_init"] == "student_consistency" and record["distillation"]["commit"] == "frame"


def test_self_forcing_starts_from_a_shallower_student(tmp_path, dataset):
    """The shipped reacher student has 4 of its teacher's 6 blocks: Self-Forcing started from
    it keeps its depth and weights (its fake score is still the teacher), and writes a student
    that dreams; a start that differs in more than depth is refused, naming both configs."""
    from dataclasses import asdict, replace

    from worldenv import config as configs
    from worldenv.checkpoint import update_bundle
    from worldenv.cli import main as cli_main
    from worldenv.distill.self_forcing import SelfForcingConfig, SelfForcingDistillation
    from worldenv.nn.backbone import Backbone
    from worldenv.world_model import WorldModel, load_backbone

    config = tiny_config(tmp_path, dataset, tok_steps=10, teacher_steps=10)
    document = yaml.safe_load(config.read_text())
    document["teacher"]["model"]["depth"] = 2
    document["consistency"]["student_layers"] = [1]
    document["self-forcing"]["student_init"] = "student_consistency"
    config.write_text(yaml.safe_dump(document))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    assert cli_main(["distill", "--method", "consistency", "--config", str(config), "--steps", "4", "--no-progress"]) == 0
    bundle = load_bundle(tmp_path / "bundle")
    shallow, teacher = load_backbone(bundle, "student_consistency"), load_backbone(bundle, "teacher")

    task = SelfForcingDistillation(configs.load(config, "self-forcing", SelfForcingConfig))
    assert task.model.student.config.depth == 1
    for name, value in task.model.student.state_dict().items():
        assert torch.equal(value, shallow.state_dict()[name]), name
    for name, value in task.model.fake.state_dict().items():
        assert torch.equal(value, teacher.state_dict()[name]), name

    assert cli_main(["distill", "--method", "self-forcing", "--config", str(config), "--steps", "4", "--no-progress"]) == 0
    assert load_bundle(tmp_path / "bundle").config("student_self-forcing")["model"]["depth"] == 1
    model = WorldModel.from_bundle(tmp_path / "bundle", batch=2, model="student_self-forcing", sampling_steps=1)
    model.reset(torch.zeros(2, 3, 64, 64, 3, dtype=torch.uint8), torch.zeros(2, 3, 2), seeds=[1, 2])
    assert model.step(torch.ones(2, 2))[0].shape == (2, 64, 64, 3)

    wide = Backbone(replace(teacher.config, width=2 * teacher.config.width))
    update_bundle(
        tmp_path / "bundle", components={"student_wide": (wide, {**bundle.config("teacher"), "model": asdict(wide.config)})}
    )
    with pytest.raises(ConfigError, match=r"student_init: 'student_wide' must have the teacher's architecture up to its depth"):
        SelfForcingDistillation(configs.load(config, "self-forcing", SelfForcingConfig, {"student_init": "student_wide"}))


@pytest.mark.parametrize("method", ["consistency", "dmd"])
def test_student_keeps_the_teacher_blocks_named_by_student_layers(tmp_path, dataset, method):
    """``student_layers: [1]``: a 1-block student of a 2-block teacher starts with the teacher's
    second block and everything outside the blocks, is recorded with its own depth, and
    dreams from the bundle; an index past the teacher's depth is refused, naming the key."""
    from worldenv import config as configs
    from worldenv.cli import main as cli_main
    from worldenv.distill.consistency import ConsistencyConfig, ConsistencyDistillation
    from worldenv.world_model import WorldModel, load_backbone

    config = tiny_config(tmp_path, dataset, tok_steps=10, teacher_steps=10)
    document = yaml.safe_load(config.read_text())
    document["teacher"]["model"]["depth"] = 2
    document[method]["student_layers"] = [1]
    config.write_text(yaml.safe_dump(document))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    teacher = load_backbone(load_bundle(tmp_path / "bundle"))

    task = ConsistencyDistillation(configs.load(config, "consistency", ConsistencyConfig, {"student_layers": [1]}))
    assert task.model.config.depth == 1
    for name, value in task.model.state_dict().items():
        source = name.replace("blocks.0.", "blocks.1.")
        assert torch.equal(value, teacher.state_dict()[source]), name

    assert cli_main(["distill", "--method", method, "--config", str(config), "--steps", "4", "--no-progress"]) == 0
    assert load_bundle(tmp_path / "bundle").config(f"student_{method}")["model"]["depth"] == 1
    model = WorldModel.from_bundle(tmp_path / "bundle", batch=2, model=f"student_{method}", sampling_steps=1)
    model.reset(torch.zeros(2, 3, 64, 64, 3, dtype=torch.uint8), torch.zeros(2, 3, 2), seeds=[1, 2])
    assert model.step(torch.ones(2, 2))[0].shape == (2, 64, 64, 3)

    with pytest.raises(ConfigError, match=r"student_layers: expected block indices in 0..1 .* got \[0, 2\]"):
        ConsistencyDistillation(configs.load(config, "consistency", ConsistencyConfig, {"student_layers": [0, 2]}))


def test_teacher_with_long_term_memory_trains_and_distils(tmp_path, dataset):
    """Sequences of sinks + memory + window (``memory_schedule``) train, and the student
    inherits the memory and dreams with it."""
    from worldenv.cli import main as cli_main
    from worldenv.world_model import WorldModel

    config = tiny_config(tmp_path, dataset, tok_steps=10)
    document = yaml.safe_load(config.read_text())
    document["teacher"]["model"]["memory_frames"] = 2
    config.write_text(yaml.safe_dump(document))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    curve = losses(tmp_path / "runs" / "teacher", "diffusion")
    assert len(curve) == 30 and falls(curve, 0.85), curve
    with pytest.raises(SystemExit):  # the CLI names the problem (long-term memory) and exits 2
        cli_main(["distill", "--method", "self-forcing", "--config", str(config), "--no-progress"])
    assert cli_main(["distill", "--method", "consistency", "--config", str(config), "--no-progress"]) == 0
    model = WorldModel.from_bundle(tmp_path / "bundle", batch=2, model="student_consistency", sampling_steps=1)
    assert model.cache.shape.memory_frames == 2
    model.reset(torch.zeros(2, 3, 64, 64, 3, dtype=torch.uint8), torch.zeros(2, 3, 2), seeds=[1, 2])
    for _ in range(8):
        frames = model.step(torch.ones(2, 2))[0]
    assert frames.shape == (2, 64, 64, 3)
    assert (model.cache.slot_frame[:, 1:3] >= 1).all()  # frames that left the window are remembered


def test_terminal_frames_weigh_more_in_the_termination_loss():
    """``termination_pos_weight``: a rare terminal frame counts that many times, so the head
    cannot learn to never fire."""
    import math
    from types import SimpleNamespace

    from worldenv.training.latent_windows import head_losses

    out = SimpleNamespace(reward=torch.zeros(1, 2, 1), termination_logit=torch.zeros(1, 2))
    batch = SimpleNamespace(rewards=torch.zeros(1, 2, 1), terminated=torch.tensor([[0.0, 1.0]]), has_step=torch.ones(1, 2))
    _, plain = head_losses(out, batch)
    _, weighted = head_losses(out, batch, termination_pos_weight=20.0)
    assert plain.item() == pytest.approx(math.log(2))  # logit 0: each frame's BCE is log 2
    assert weighted.item() == pytest.approx((1 + 20) / 2 * math.log(2))


def test_teacher_with_an_action_history_and_action_flow_trains_distils_and_dreams(tmp_path, dataset):
    """Windows carry the actions before them (``past_actions``) into training and into
    Self-Forcing's rollouts; the dream keeps the recent actions in its cache, so a frame
    depends on the action two steps back through its condition and its ActionFlow input."""
    from worldenv.cli import main as cli_main
    from worldenv.world_model import WorldModel

    config = tiny_config(tmp_path, dataset, tok_steps=10, teacher_steps=20)
    document = yaml.safe_load(config.read_text())
    document["teacher"]["model"]["action_history"] = 3
    document["teacher"]["model"]["action_flow"] = True
    config.write_text(yaml.safe_dump(document))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    assert cli_main(["distill", "--method", "self-forcing", "--config", str(config), "--steps", "8", "--no-progress"]) == 0
    student = load_bundle(tmp_path / "bundle").config("student_self-forcing")["model"]
    assert student["action_history"] == 3 and student["action_flow"]

    def dream(first_push: float) -> torch.Tensor:
        model = WorldModel.from_bundle(tmp_path / "bundle", batch=1, model="student_self-forcing", sampling_steps=1)
        model.reset(torch.zeros(1, 3, 64, 64, 3, dtype=torch.uint8), torch.zeros(1, 3, 2), seeds=[1])
        model.step(torch.full((1, 2), first_push), decode=False)
        assert torch.equal(model.state.recent_actions[:, -1], torch.full((1, 2), first_push))
        model.step(torch.zeros(1, 2), decode=False)
        return model.step(torch.zeros(1, 2))[0]

    assert torch.equal(dream(1.0), dream(1.0)) and not torch.equal(dream(1.0), dream(-1.0))


def test_a_teacher_trains_on_extra_datasets_and_records_them(tmp_path, dataset):
    from dataclasses import replace

    from worldenv.data.dataset import load_dataset
    from worldenv.data.format import MANIFEST
    from worldenv.io import sha256_file
    from worldenv.state_io import load_tree
    from worldenv.training.data import DataConfig

    config = tiny_config(tmp_path, dataset, tok_steps=4, teacher_steps=4)
    settings = yaml.safe_load(config.read_text())
    settings["teacher"]["data"]["extra_paths"] = [str(dataset)]  # the same episodes twice
    config.write_text(yaml.safe_dump(settings))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    recorded = load_bundle(tmp_path / "bundle").metadata["teacher_training"]["dataset"]
    assert recorded["extra"] == [{"path": str(dataset), "manifest_sha256": sha256_file(dataset / MANIFEST)}]
    assert f"- more training data: `{dataset}`" in render_card(load_bundle(tmp_path / "bundle").metadata)
    data = DataConfig(path=str(dataset), held_out_episodes=1, extra_paths=[str(dataset)])
    (cache_path,) = (dataset / ".latents").glob(f"*-{data.fingerprint()}.safetensors")
    cache = load_tree(cache_path)
    held_out = load_dataset(dataset, episodes=slice(3, 4)).num_frames
    assert cache["frames"] == 2 * load_dataset(dataset).num_frames - held_out
    # The cache names the data it holds: other extra datasets, or another split, are other data.
    assert cache["data"] == data.fingerprint()
    assert (
        len({data.fingerprint(), replace(data, extra_paths=[]).fingerprint(), replace(data, held_out_episodes=2).fingerprint()})
        == 3
    )


def test_a_teacher_fine_tunes_from_the_bundle_named_by_init_from(tmp_path, dataset):
    """``teacher.init_from``: training starts from that bundle's teacher, not fresh weights,
    and the bundle records which; a teacher of another architecture or of another
    tokenizer's latents is refused by name."""
    import shutil

    from worldenv import config as configs
    from worldenv.training.teacher_task import TeacherTask, TeacherTrainingConfig
    from worldenv.world_model import load_backbone

    config = tiny_config(tmp_path, dataset, tok_steps=4, teacher_steps=4)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    start = tmp_path / "start"
    shutil.copytree(tmp_path / "bundle", start)
    trained = load_backbone(load_bundle(start)).state_dict()

    task = TeacherTask(configs.load(config, "teacher", TeacherTrainingConfig, {"init_from": str(start)}))
    for name, value in task.model.state_dict().items():
        assert torch.equal(value, trained[name]), name
    fresh = TeacherTask(configs.load(config, "teacher", TeacherTrainingConfig)).model.state_dict()
    assert any(not torch.equal(value, trained[name]) for name, value in fresh.items())

    assert (
        train_main(
            [
                "teacher",
                "--config",
                str(_with_init_from(config, start)),
                "--run",
                str(tmp_path / "runs" / "tuned"),
                "--no-progress",
            ]
        )
        == 0
    )
    recorded = load_bundle(tmp_path / "bundle").metadata["teacher_training"]["init_from"]
    assert recorded == {"path": str(start), "teacher_sha256": load_bundle(start).records["teacher"]["sha256"]}
    assert f"- started from: the teacher of `{start}`" in render_card(load_bundle(tmp_path / "bundle").metadata)

    wider = {**yaml.safe_load(config.read_text())["teacher"]["model"], "width": 64}
    with pytest.raises(
        ConfigError, match=r"init_from: .*start: its teacher's model config .*width=32.* differs from teacher.model .*width=64"
    ):
        TeacherTask(configs.load(config, "teacher", TeacherTrainingConfig, {"init_from": str(start), "model": wider}))
    assert (
        train_main(
            [
                "tokenizer",
                "--config",
                str(config),
                "--steps",
                "5",
                "--bundle",
                str(tmp_path / "other"),
                "--run",
                str(tmp_path / "runs" / "other-tokenizer"),
                "--no-progress",
            ]
        )
        == 0
    )
    with pytest.raises(ConfigError, match=r"init_from: .*start: its tokenizer differs from .*other's"):
        TeacherTask(
            configs.load(
                config,
                "teacher",
                TeacherTrainingConfig,
                {"init_from": str(start), "bundle": str(tmp_path / "other"), "run": str(tmp_path / "runs" / "other-teacher")},
            )
        )


def _with_init_from(config: Path, start: Path) -> Path:
    settings = yaml.safe_load(config.read_text())
    settings["teacher"]["init_from"] = str(start)
    tuned = config.with_name("tuned.yaml")
    tuned.write_text(yaml.safe_dump(settings))
    return tuned


def test_runs_on_the_same_data_and_tokenizer_encode_it_once(tmp_path, dataset, caplog):
    """The latent cache lives beside the data: a second run (a fine-tune, a recipe variant)
    in another run directory reads it instead of encoding every frame again."""
    import logging

    from worldenv.training.latent_windows import latent_cache_path

    config = tiny_config(tmp_path, dataset, tok_steps=3, teacher_steps=2)
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    with caplog.at_level(logging.INFO, logger="worldenv.training.latent_windows"):
        assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
        assert sum("encoding" in r.message for r in caplog.records) == 1
        assert train_main(["teacher", "--config", str(config), "--run", str(tmp_path / "second"), "--no-progress"]) == 0
        assert sum("encoding" in r.message for r in caplog.records) == 1
    run = tmp_path / "run"
    assert latent_cache_path(tmp_path / "missing" / "data", "tok", "data", run) == run / "latents.safetensors"


def test_a_teacher_with_a_wider_action_flow_starts_from_a_narrower_one_unchanged(tmp_path, dataset):
    """``model.action_flow_reach`` may grow over ``init_from``'s: the widened teacher at step 0
    computes what the start teacher did (the new ring's weights are zero); any other
    architecture change is still refused."""
    from worldenv import config as configs
    from worldenv.training.teacher_task import TeacherTask, TeacherTrainingConfig
    from worldenv.world_model import load_backbone

    config = tiny_config(tmp_path, dataset, tok_steps=4, teacher_steps=4)
    settings = yaml.safe_load(config.read_text())
    settings["teacher"]["model"].update(action_flow=True, action_history=2)
    config.write_text(yaml.safe_dump(settings))
    assert train_main(["tokenizer", "--config", str(config), "--no-progress"]) == 0
    assert train_main(["teacher", "--config", str(config), "--no-progress"]) == 0
    start = load_backbone(load_bundle(tmp_path / "bundle")).eval()
    wide_model = {**settings["teacher"]["model"], "action_flow_reach": 2}
    task = TeacherTask(
        configs.load(config, "teacher", TeacherTrainingConfig, {"init_from": str(tmp_path / "bundle"), "model": wide_model})
    )
    wide = task.model.eval()
    assert wide.action_flow.reach == 2
    torch.manual_seed(0)
    grid, channels = start.config.grid, start.config.latent_channels
    x = torch.randn(2, 3, grid * grid, channels)
    t, actions = torch.rand(2, 3), torch.randn(2, 3, 2)
    with torch.no_grad():
        previous, history = torch.randn(2, 3, grid * grid, channels), torch.randn(2, 3, start.flow_actions)
        flow = start.action_flow(previous, history) - start.action_flow(previous, torch.zeros_like(history))
        assert flow.abs().max() > 1e-4  # the start's flow already moves tokens: the check below means something
        torch.testing.assert_close(
            wide.action_flow(previous, history), start.action_flow(previous, history), atol=1e-5, rtol=1e-5
        )
        torch.testing.assert_close(wide(x, t, actions).velocity, start(x, t, actions).velocity, atol=1e-5, rtol=1e-5)
    narrower = {**settings["teacher"]["model"], "action_flow_reach": 2, "width": 64}
    with pytest.raises(ConfigError, match="only a wider model.action_flow_reach may differ"):
        TeacherTask(
            configs.load(config, "teacher", TeacherTrainingConfig, {"init_from": str(tmp_path / "bundle"), "model": narrower})
        )
