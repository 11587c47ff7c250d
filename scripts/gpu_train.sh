#!/usr/bin/env bash
# Train reacher teachers at GPU scale on one machine, distil each into a 1-step student,
# evaluate the teacher against MuJoCo; write what changed to OUT, all within TOTAL_SECONDS.
#
#   set -o pipefail; bash scripts/gpu_train.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
#
# 0. times the shipped student and teacher as a dream at batch 1 and 1024 on the idle GPU
#    (bf16) beside MuJoCo step+render, and the student eager and compiled (CUDA graphs) at
#    batch 1 and 4096, into the log (BENCH_SHIPPED=0 skips it: about 2 minutes),
# 1. collects the reacher dataset with MuJoCo (configs/reacher.yaml, WORKERS processes),
# 2. for each of VARIANTS at once (teachers that differ in their action histories; more than
#    one shares the GPU: on an H200 three ran at 0.068 s per step each against 0.13 s timed
#    alone with warm-up), from a copy of the shipped bundle (tokenizer, probe, start contexts):
#    trains the teacher with CONFIG's teacher section for the time that the deadline leaves
#    after STUDENT_SECONDS and RESERVE_SECONDS, then its STUDENT_METHOD student for
#    STUDENT_SECONDS; each run's step count comes from a timing run's rate after warm-up,
# 3. writes OUT/<variant>.tar.gz (the new teacher, bundle.json, metadata.json, card.md, curves)
#    and OUT/<variant>-<student>.safetensors as soon as both are trained: unpack both into a
#    copy of checkpoints/reacher to ship it,
# 4. evaluates the teacher at 8 steps against MuJoCo and its response to a push, into
#    OUT/<variant>-reports.tar.gz. (Evaluate the student on the CPU afterwards: `worldenv
#    compare`; on the GPU its frame-committing eval did not finish in 100 s.)
# Wheels in .whl/ (mujoco-core, gymnasium, ... for the machine's Python) are installed first.
# Knobs: TOTAL_SECONDS (540, from the start of this script), VARIANTS ("name=action_history/
# action_flow_history ...", 0 = all), STUDENT_METHOD (consistency), STUDENT_SECONDS (90),
# RESERVE_SECONDS (150: data loading, timing runs, archives, evaluation), EPISODES (1000),
# WORKERS (16), CONFIG, EVAL_EPISODES (4), EVAL_HORIZON (200), BENCH_SHIPPED (1),
# SPEED_BATCH (1024), SPEED_SECONDS (3), PYTHON, WHEELS (.whl).
set -euo pipefail
OUT=${1:?usage: scripts/gpu_train.sh OUT_DIR}
START=$(date +%s)
PY=${PYTHON:-python3}
TOTAL_SECONDS=${TOTAL_SECONDS:-540}
VARIANTS=${VARIANTS:-"h16f4=16/4"}
STUDENT_METHOD=${STUDENT_METHOD:-consistency}
STUDENT_SECONDS=${STUDENT_SECONDS:-90}
RESERVE_SECONDS=${RESERVE_SECONDS:-150}
EPISODES=${EPISODES:-1000}
WORKERS=${WORKERS:-16}
CONFIG=${CONFIG:-configs/reacher-gpu.yaml}
EVAL_EPISODES=${EVAL_EPISODES:-4}
EVAL_HORIZON=${EVAL_HORIZON:-200}
STUDENT=student_$STUDENT_METHOD
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
echo "== $(date -u +%FT%TZ) device $DEVICE; variants $VARIANTS; ${TOTAL_SECONDS}s in all, $STUDENT ${STUDENT_SECONDS}s"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

if [ "${BENCH_SHIPPED:-1}" = 1 ]; then
    echo "== dream speed $(date -u +%T)"
    "$PY" -m worldenv.cli bench dream --checkpoint checkpoints/reacher --model "$STUDENT" --device "$DEVICE" \
        --envs 1 "${SPEED_BATCH:-1024}" --sampling-steps 1 --commit frame --seconds "${SPEED_SECONDS:-3}"
    "$PY" -m worldenv.cli bench dream --checkpoint checkpoints/reacher --model teacher --device "$DEVICE" \
        --envs 1 "${SPEED_BATCH:-1024}" --sampling-steps 8 --seconds "${SPEED_SECONDS:-3}"
    # The served dream eager and compiled (reduce-overhead: CUDA graphs) at batch 1 and 4096, beside
    # MuJoCo (issue 34's GPU targets: batch 1 in 3 ms, 100k env-steps/s at 4096).
    "$PY" -m worldenv.cli bench dream --checkpoint checkpoints/reacher --model "$STUDENT" --device "$DEVICE" \
        --envs 1 4096 --sampling-steps 1 --commit frame --compile off on --seconds "${SPEED_SECONDS:-3}"
fi

echo "== collect $(date -u +%T)"
"$PY" -m worldenv.cli collect --config configs/reacher.yaml --episodes "$EPISODES" --workers "$WORKERS" \
    --out "$ROOT/data/reacher" --no-progress
TEACHER_SECONDS=$((TOTAL_SECONDS - ($(date +%s) - START) - STUDENT_SECONDS - RESERVE_SECONDS))
if [ "$TEACHER_SECONDS" -lt 30 ]; then echo "== only ${TEACHER_SECONDS}s left for the teacher"; exit 1; fi

# train TASK CONFIG DIR SECONDS: time 40 steps of TASK (teacher or a distillation method) into
# a scratch copy of DIR/bundle, then train it for about SECONDS into DIR/bundle.
train() {
    local task=$1 config=$2 dir=$3 seconds=$4 command steps
    if [ "$task" = teacher ]; then command=("$PY" -m worldenv.train teacher)
    else command=("$PY" -m worldenv.cli distill --method "$task"); fi
    rm -rf "$dir/timing-$task" "$dir/timing-bundle" "$dir/run-$task"
    cp -r "$dir/bundle" "$dir/timing-bundle"
    "${command[@]}" --config "$dir/timing.yaml" --steps 40 --run "$dir/timing-$task" --bundle "$dir/timing-bundle" --no-progress
    steps=$("$PY" - "$dir/timing-$task/metrics.jsonl" "$seconds" <<'PY'
import json, sys
logged = [json.loads(line) for line in open(sys.argv[1])]
first, last = logged[len(logged) // 2], logged[-1]  # the rate after warm-up (the first steps compile and allocate)
per_step = (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])
print(max(100, int(float(sys.argv[2]) / per_step)))
PY
)
    echo "== $(basename "$dir") $task: $steps steps in about ${seconds}s $(date -u +%T)"
    mkdir -p "$dir/run-$task"
    cp "$dir/timing-$task/latents.safetensors" "$dir/run-$task/"  # encoded once
    "${command[@]}" --config "$config" --steps "$steps" --run "$dir/run-$task" --bundle "$dir/bundle" --no-progress
}

# variant NAME HISTORY FLOW_HISTORY: one teacher and its student, archived, then evaluated, in ROOT/NAME.
variant() {
    local name=$1 history=$2 flow=$3 dir=$ROOT/$1
    rm -rf "$dir/bundle" "$dir/reports" && mkdir -p "$dir/reports"
    cp -r checkpoints/reacher "$dir/bundle"
    "$PY" - "$CONFIG" "$dir" "$history" "$flow" <<'PY'
import copy, sys, yaml
preset = yaml.safe_load(open(sys.argv[1]))
preset["teacher"]["model"].update(action_history=int(sys.argv[3]), action_flow_history=int(sys.argv[4]))
yaml.safe_dump(preset, open(f"{sys.argv[2]}/config.yaml", "w"), sort_keys=False)
timing = copy.deepcopy(preset)  # logs often enough to time the steps after warm-up
for section in timing.values():
    section["train"]["log_every"] = 10
yaml.safe_dump(timing, open(f"{sys.argv[2]}/timing.yaml", "w"), sort_keys=False)
PY
    train teacher "$dir/config.yaml" "$dir" "$TEACHER_SECONDS"
    train "$STUDENT_METHOD" "$dir/config.yaml" "$dir" "$STUDENT_SECONDS"
    cp "$dir/run-teacher/curve.png" "$dir/reports/teacher_curve.png"
    cp "$dir/run-teacher/metrics.jsonl" "$dir/reports/teacher_metrics.jsonl"
    cp "$dir/run-$STUDENT_METHOD/metrics.jsonl" "$dir/reports/${STUDENT}_metrics.jsonl"
    # The student travels beside the archive: each file that comes back must stay under 16 MiB.
    tar -czf "$OUT/$name.tar.gz" -C "$dir/bundle" teacher.safetensors bundle.json metadata.json card.md -C "$dir" reports
    cp "$dir/bundle/$STUDENT.safetensors" "$OUT/$name-$STUDENT.safetensors"
    echo "== $name trained, evaluate $(date -u +%T)"
    "$PY" -m worldenv.cli eval --checkpoint "$dir/bundle" --model teacher --steps 8 --episodes "$EVAL_EPISODES" \
        --horizon "$EVAL_HORIZON" --device "$DEVICE" --json "$dir/reports/eval-teacher.json"
    "$PY" benchmarks/action_response.py --scene reacher --checkpoint "$dir/bundle" --model teacher --sampling-steps 8 \
        --actions 1 -1 --hold 3 --steps 12 --gain-step 10 --json "$dir/reports/action_response-teacher-hold3.json"
    cp "$dir/log.txt" "$dir/reports/log.txt"
    tar -czf "$OUT/$name-reports.tar.gz" -C "$dir" reports
    echo "== $name done $(date -u +%T)"
}

names=() pids=()
for spec in $VARIANTS; do
    name=${spec%%=*} histories=${spec#*=}
    mkdir -p "$ROOT/$name"
    variant "$name" "${histories%/*}" "${histories#*/}" 2>&1 | tee "$ROOT/$name/log.txt" | sed -u "s/^/[$name] /" &
    names+=("$name") pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
[ "${#failed[@]}" = 0 ] || { echo "== failed: ${failed[*]}"; exit 1; }
echo "== done $(date -u +%FT%TZ), $(($(date +%s) - START))s"
