#!/usr/bin/env bash
# scripts/gpu_check.sh: proves both GPU paths on a machine with a GPU, in one run.
#
#   scripts/gpu_check.sh [--quick]                           (in the repository, after deno install)
#   docker run --rm --gpus all --shm-size=1g -v galaxy-cuda-cache:/cuda-cache galaxy scripts/gpu_check.sh
#
# Prints, in order: `deno task doctor`; each NVIDIA GPU's compute capability; the smoke checks
# (`deno task doctor --smoke`) on every backend that loads here: tensorflow (native, CUDA) where
# nvidia-smi lists a GPU, webgpu where Deno finds a GPU adapter (a software renderer such as
# lavapipe is not a GPU and is skipped), and wasm, the CPU backend everything is compared with;
# then ResNet-34 at 64 px, train-step and inference images/s on each, against wasm
# (bench/workloads/train_step.ts and infer.ts). Each skipped check is named with its reason.
# --quick: fewer and smaller timed batches (a smoke of this script, not a measurement).
#
# Needs only the repository, deno, and what `deno install` (or the image) brings; nvidia-smi
# where there is an NVIDIA driver. Every step has a deadline (coreutils timeout, where present).
#
# Exit status (docs/gpu.md):
#   0  every check passed, and at least one GPU path (tensorflow on CUDA, or webgpu) was checked
#   1  a check failed (named in the summary)
#   2  usage error
#   3  no GPU found: the CPU checks passed, the GPU checks were skipped (named in the summary)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: scripts/gpu_check.sh [--quick]" >&2; exit 2 ;;
  esac
done

# Timed settings: 64 px ResNet-34 as the bench's train and infer rows take them.
if [ "$QUICK" = 1 ]; then
  TRAIN_ARGS=(--size 64 --batch 2 --warmup 1 --steps 1)
  INFER_ARGS=(--size 64 --batch 2 --warmup 1 --batches 1)
else
  TRAIN_ARGS=(--size 64 --batch 16 --warmup 2 --steps 5)
  INFER_ARGS=(--size 64 --batch 32 --warmup 1 --batches 5)
fi
# Deadlines, seconds. A first start on a GPU above compute capability 8.0 compiles
# libtensorflow's PTX (30 minutes or longer, docs/gpu.md): the native steps get an hour.
SHORT=300
LONG=3600

PASSED=()
FAILED=()
SKIPPED=()
GPU_CHECKED=0

section() { printf '\n== %s\n' "$1"; }

# with_deadline SECONDS CMD...: runs CMD, killed after SECONDS (exit 124) where timeout exists.
with_deadline() {
  local seconds=$1
  shift
  if command -v timeout >/dev/null 2>&1; then
    timeout --kill-after=30 "$seconds" "$@"
  else
    "$@"
  fi
}

# check NAME SECONDS CMD...: runs CMD with its output shown; records NAME as passed or failed.
check() {
  local name=$1 seconds=$2
  shift 2
  with_deadline "$seconds" "$@"
  local status=$?
  if [ "$status" = 0 ]; then
    PASSED+=("$name")
  elif [ "$status" = 124 ] || [ "$status" = 137 ]; then
    FAILED+=("$name (no answer within $seconds s)")
  else
    FAILED+=("$name (exit status $status)")
  fi
  return "$status"
}

section "deno task doctor"
check "doctor" "$LONG" deno task -q doctor

section "compute capability (nvidia-smi)"
NVIDIA=0
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "no NVIDIA GPU found: nvidia-smi is not installed (no NVIDIA driver, or the container"
  echo "was started without --gpus all)"
elif ! caps=$(with_deadline 30 nvidia-smi --query-gpu=index,name,compute_cap --format=csv,noheader 2>&1); then
  echo "nvidia-smi cannot list compute_cap (driver older than 510?): $caps"
  if with_deadline 30 nvidia-smi -L; then NVIDIA=1; fi
elif [ -z "$caps" ]; then
  echo "no NVIDIA GPU found: nvidia-smi lists none"
else
  echo "$caps"
  NVIDIA=1
fi

# The backends to check, each with the reason when it is skipped.
BACKENDS=()
if [ "$NVIDIA" = 1 ]; then
  BACKENDS+=(tensorflow)
else
  SKIPPED+=("tensorflow (CUDA) smoke and speed: no NVIDIA GPU found")
fi
section "WebGPU adapter (deno task doctor --backend webgpu)"
webgpu_out=$(with_deadline "$SHORT" deno task -q doctor --backend webgpu 2>&1)
adapter=$(printf '%s\n' "$webgpu_out" | sed -n 's/^WebGPU adapter *//p' | head -n 1)
if [ -z "$adapter" ]; then
  reason=$(printf '%s\n' "$webgpu_out" | sed -n 's/^ *skipped *@tensorflow\/tfjs-backend-webgpu: //p' | head -n 1)
  echo "none: ${reason:-webgpu did not load}"
  SKIPPED+=("webgpu smoke and speed: no WebGPU adapter (${reason:-webgpu did not load})")
elif printf '%s' "$adapter" | grep -q 'software renderer$'; then
  echo "$adapter"
  SKIPPED+=("webgpu smoke and speed: the only adapter is a software renderer, not a GPU ($adapter)")
else
  echo "$adapter"
  BACKENDS+=(webgpu)
fi
BACKENDS+=(wasm)

for b in "${BACKENDS[@]}"; do
  section "smoke checks on $b (deno task doctor --smoke --backend $b)"
  seconds=$SHORT
  [ "$b" = tensorflow ] && seconds=$LONG
  if check "smoke on $b" "$seconds" deno task -q doctor --smoke --backend "$b"; then
    [ "$b" != wasm ] && GPU_CHECKED=1
  fi
done

# images_per_sec of a workload's JSON result line (its last line on stdout), or nothing.
images_per_sec() { sed -n 's/.*"images_per_sec":\([0-9.eE+-]*\).*/\1/p' | tail -n 1; }

# Bench workloads run with the permissions the bench gives them (lib/bench/workload.ts).
WORKLOAD=(deno run --config deno.json --allow-all)

section "ResNet-34, 64 px: train-step and inference images/s per backend"
# Figures in TRAIN_<backend> and INFER_<backend> (no associative arrays: macOS has bash 3.2).
figure() { local name="$1_$2"; echo "${!name:-}"; }
for b in "${BACKENDS[@]}"; do
  seconds=$SHORT
  [ "$b" != wasm ] && seconds=$LONG
  echo "-- $b: train step (${TRAIN_ARGS[*]})"
  if out=$(with_deadline "$seconds" "${WORKLOAD[@]}" bench/workloads/train_step.ts --backend "$b" "${TRAIN_ARGS[@]}"); then
    printf -v "TRAIN_$b" '%s' "$(printf '%s\n' "$out" | images_per_sec)"
    PASSED+=("train step on $b")
  else
    FAILED+=("train step on $b (exit status $?)")
  fi
  echo "-- $b: inference (${INFER_ARGS[*]})"
  if out=$(with_deadline "$seconds" "${WORKLOAD[@]}" bench/workloads/infer.ts --mode model --backend "$b" "${INFER_ARGS[@]}"); then
    printf -v "INFER_$b" '%s' "$(printf '%s\n' "$out" | images_per_sec)"
    PASSED+=("inference on $b")
  else
    FAILED+=("inference on $b (exit status $?)")
  fi
done

ratio() {
  if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "?" }'
  else
    echo "?"
  fi
}
fmt() { if [ -n "${1:-}" ]; then awk -v v="$1" 'BEGIN { printf "%.3g", v }'; else echo "failed"; fi; }
printf '\n%-12s %18s %10s %18s %10s\n' backend "train images/s" "vs wasm" "infer images/s" "vs wasm"
for b in "${BACKENDS[@]}"; do
  t=$(figure TRAIN "$b")
  i=$(figure INFER "$b")
  printf '%-12s %18s %10s %18s %10s\n' "$b" "$(fmt "$t")" "$(ratio "$t" "$(figure TRAIN wasm)")" \
    "$(fmt "$i")" "$(ratio "$i" "$(figure INFER wasm)")"
done
[ "$QUICK" = 1 ] && echo "(--quick: one small batch each, not a measurement)"

section "summary"
for c in "${PASSED[@]}"; do echo "ok    $c"; done
for c in "${SKIPPED[@]}"; do echo "skip  $c"; done
for c in "${FAILED[@]}"; do echo "FAIL  $c"; done
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "gpu_check: ${#FAILED[@]} check(s) failed"
  exit 1
fi
if [ "$GPU_CHECKED" = 0 ]; then
  echo "gpu_check: no GPU found; the CPU checks passed and the GPU checks were skipped (exit 3)"
  exit 3
fi
echo "gpu_check: every check passed"
exit 0
