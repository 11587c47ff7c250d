#!/usr/bin/env bash
# Train the reacher teacher, or distil a student, at GPU scale on one machine; write what
# changed to OUT.
#
#   set -o pipefail; TASK=teacher bash scripts/gpu_train.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
#   TASK=self-forcing ...   (or consistency, dmd: a 1-step student of the bundle's teacher)
#
# 1. collects the reacher dataset with MuJoCo (configs/reacher.yaml, WORKERS processes),
# 2. starts from the shipped bundle (tokenizer, probe, start contexts, teacher),
# 3. times a few steps of TASK, then trains for BUDGET_SECONDS (CONFIG's TASK section),
# 4. evaluates against MuJoCo, measures action sensitivity and response, and times the dream at
#    batch 1 and 1024 on the GPU (bf16),
# 5. copies the new component, bundle.json, metadata.json and card.md (and the numbers) to
#    OUT: copy those four into checkpoints/reacher/ to ship it.
# Wheels in .whl/ (mujoco-core, gymnasium, ... for the machine's Python) are installed first.
# Knobs: BUDGET_SECONDS (420), EPISODES (1000), WORKERS (16), CONFIG, EVAL_EPISODES (8), HELD_OUT (50,
# as in CONFIG), PYTHON, WHEELS (.whl).
set -euo pipefail
OUT=${1:?usage: scripts/gpu_train.sh OUT_DIR}
PY=${PYTHON:-python3}
BUDGET_SECONDS=${BUDGET_SECONDS:-420}
EPISODES=${EPISODES:-1000}
WORKERS=${WORKERS:-16}
CONFIG=${CONFIG:-configs/reacher-gpu.yaml}
TASK=${TASK:-teacher}
if [ "$TASK" = teacher ]; then COMPONENT=teacher; STEPS_PER_FRAME=8; TRAIN="$PY -m worldenv.train teacher"
else COMPONENT="student_$TASK"; STEPS_PER_FRAME=1; TRAIN="$PY -m worldenv.cli distill --method $TASK"; fi
EVAL_EPISODES=${EVAL_EPISODES:-8}
ROOT=/tmp/worldenv  # the scratch paths of configs/reacher-gpu.yaml
mkdir -p "$OUT" "$ROOT"

WHEELS=${WHEELS:-.whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
echo "== $(date -u +%FT%TZ) device $DEVICE, budget ${BUDGET_SECONDS}s"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

echo "== collect"
"$PY" -m worldenv.cli collect --config configs/reacher.yaml --episodes "$EPISODES" --workers "$WORKERS" \
    --out "$ROOT/data/reacher" --no-progress

echo "== time $TASK's steps"
rm -rf "$ROOT/bundle" "$ROOT/timing" "$ROOT/timing-bundle" "$ROOT/run"
cp -r checkpoints/reacher "$ROOT/bundle"
cp -r checkpoints/reacher "$ROOT/timing-bundle"
$TRAIN --config "$CONFIG" --steps 40 --run "$ROOT/timing" --bundle "$ROOT/timing-bundle" --no-progress
STEPS=$("$PY" - "$ROOT/timing/metrics.jsonl" "$BUDGET_SECONDS" <<'PY'
import json, sys
last = [json.loads(line) for line in open(sys.argv[1])][-1]
per_step = last["seconds"] / last["step"]  # warm-up included: errs towards fewer steps
print(max(100, int(float(sys.argv[2]) / per_step)))
PY
)
echo "== train $STEPS steps"
mkdir -p "$ROOT/run/$TASK"
cp "$ROOT/timing/latents.safetensors" "$ROOT/run/$TASK/"  # encoded once
$TRAIN --config "$CONFIG" --steps "$STEPS" --run "$ROOT/run/$TASK" --no-progress

echo "== evaluate"
"$PY" -m worldenv.cli eval --checkpoint "$ROOT/bundle" --model "$COMPONENT" --steps "$STEPS_PER_FRAME" \
    --episodes "$EVAL_EPISODES" --horizon 200 --device "$DEVICE" --json "$OUT/eval.json" --update-card
"$PY" benchmarks/action_sensitivity.py --bundle "$ROOT/bundle" --model "$COMPONENT" --data "$ROOT/data/reacher" \
    --held-out "${HELD_OUT:-50}" > "$OUT/action_sensitivity.json"
"$PY" benchmarks/action_response.py --scene reacher --checkpoint "$ROOT/bundle" --model "$COMPONENT" \
    --sampling-steps "$STEPS_PER_FRAME" --json "$OUT/action_response.json"
echo "== dream speed"  # printed into the log
"$PY" -m worldenv.cli bench dream --checkpoint "$ROOT/bundle" --model "$COMPONENT" --device "$DEVICE" \
    --envs 1 ${SPEED_BATCH:-1024} --sampling-steps "$STEPS_PER_FRAME" --seconds 5
cp "$ROOT/bundle/$COMPONENT.safetensors" "$ROOT/bundle/bundle.json" "$ROOT/bundle/metadata.json" "$ROOT/bundle/card.md" "$OUT/"
cp "$ROOT/run/$TASK/curve.png" "$OUT/${TASK}_curve.png"
echo "== done $(date -u +%FT%TZ)"
