"""The fixed-budget recipe table: teacher variants trained for the same CPU budget on
the same data and threads, each scored the same way, one row per variant.

A recipe file (``configs/recipes/<scene>.yaml``) names a preset whose ``teacher``
section is today's recipe, the bundle every variant starts from (its tokenizer, probe
and start contexts; its teacher too when ``fine_tune``), the budget, and the
variants, each a set of overrides of that section. Every variant gets a directory
``<out>/<variant>/`` holding the exact preset it trained from (``teacher.yaml``:
rerun it with ``worldenv train teacher --config <out>/<variant>/teacher.yaml``), its
run and its bundle; its scores go to ``<results>/<variant>.json``. Each stage is
skipped when its output exists, and an interrupted training resumes, so the same
command finishes a table that was stopped, and a table grows a row at a time.
"""

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from worldenv import config as configs
from worldenv.config import ConfigError
from worldenv.io import atomic_write

logger = logging.getLogger(__name__)


@dataclass
class ScoreConfig:
    episodes: int = 4  # per action policy of `worldenv eval`
    horizon: int = 200
    sampling_steps: int = 4  # Euler steps of the teacher
    gain_starts: int = 4  # real starts of the constant-push test
    gain_steps: tuple[int, ...] = (3, 10)
    one_step_windows: int = 256


@dataclass
class RecipeTable:
    preset: str  # a preset whose `teacher` section is today's recipe
    start: str  # the bundle each variant starts from
    out: str  # variants' presets, runs and bundles
    results: str  # rows (JSON), the table (Markdown) and its PNG
    budget_cpu_minutes: float
    threads: int = 1
    fine_tune: bool = True  # start from `start`'s teacher (init_from) rather than fresh weights
    train: dict = field(default_factory=dict)  # overrides of the preset's teacher.train for every variant
    score: ScoreConfig = field(default_factory=ScoreConfig)
    variants: dict = field(default_factory=dict)  # name -> overrides of the teacher section

    def validate(self) -> None:
        if not self.variants:
            raise ConfigError("variants: expected at least one variant (name: overrides of the teacher section)")
        for name, overrides in self.variants.items():
            if not isinstance(overrides, dict):
                raise ConfigError(f"variants.{name}: expected a mapping of teacher overrides, got {overrides!r}")
        if self.threads < 1:
            raise ConfigError(f"threads: expected a positive integer, got {self.threads}")

    def variant_dir(self, name: str) -> Path:
        return Path(self.out) / name

    def row_path(self, name: str) -> Path:
        return Path(self.results) / f"{name}.json"


def load_table(path: str | Path) -> RecipeTable:
    path = Path(path)
    return configs.build(RecipeTable, configs.read_document(path, "recipe table"), str(path))


def variant_teacher_section(table: RecipeTable, name: str) -> dict:
    """The teacher section variant ``name`` trains from: the preset's, with the table's
    budget, paths and start, then the variant's own overrides."""
    if name not in table.variants:
        raise ConfigError(f"unknown variant {name!r}; the table has {sorted(table.variants)}")
    preset = Path(table.preset)
    document = configs.read_document(preset)
    if "teacher" not in document:
        raise ConfigError(f"{preset}: no 'teacher' section; found {sorted(document)}")
    directory = table.variant_dir(name)
    common = {
        "bundle": str(directory / "bundle"),
        "run": str(directory / "teacher"),
        "train": {**table.train, "budget_cpu_minutes": table.budget_cpu_minutes},
        **({"init_from": table.start} if table.fine_tune else {}),
    }
    return configs.merge(configs.merge(document["teacher"], common), table.variants[name])


def prepare_variant(table: RecipeTable, name: str) -> Path:
    """Write the variant's preset and a copy of the start bundle to train into; returns the preset."""
    directory = table.variant_dir(name)
    section = variant_teacher_section(table, name)
    from worldenv.training.teacher_task import TeacherTrainingConfig

    configs.build(TeacherTrainingConfig, section, f"variants.{name}")  # refuse a bad override before any work
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "bundle").exists():
        shutil.copytree(table.start, directory / "bundle")
    preset = directory / "teacher.yaml"
    text = f"# Variant {name!r} of the recipe table; written by `worldenv recipes`.\n" + yaml.safe_dump(
        {"teacher": section}, sort_keys=False
    )
    atomic_write(preset, lambda tmp: tmp.write_text(text))
    return preset
