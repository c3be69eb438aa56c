#!/usr/bin/env bash
# deploy/slurm/glvq.sbatch on a real Slurm: a private single-node cluster
# (munged, slurmctld, slurmd from Debian's packages; local_slurm.sh) runs
# the script with CPU workers on the stories260K fixture twice:
#   1. with slow workers, drained by the pre-timeout signal (SIGTERM to the
#      batch shell, as --signal=B:TERM@120 sends it): exit 75, the workers
#      drain, no output is written;
#   2. resubmitted with the same state dir: the coordinator resumes the job
#      from its journal and finishes it; the packed output must be
#      byte-identical to `glvq quantize` of the same spec on this machine;
#   3. with more workers than CPUs: the worker step cannot start and the
#      script exits 1 instead of waiting. Every daemon is stopped by PID. Run by CTest
# (label `slurm`).
#
# Env: GLVQ_BIN_DIR       build/bin holding glvq, glvq-coordinator, glvq-worker (required)
#      GLVQ_FIXTURES_DIR  holding stories260K/ (required)
# Exit 77 (CTest: skipped) without the Slurm/munge programs or root,
# outside CI; with CI set that is a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sbatch_script="$here/../../deploy/slurm/glvq.sbatch"
bin_dir=${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR to the build/bin directory}
fixtures=${GLVQ_FIXTURES_DIR:?set GLVQ_FIXTURES_DIR to the fixtures directory}

fail() { echo "slurm test: $*" >&2; exit 1; }
unavailable() {
  if [[ -n "${CI:-}" ]]; then fail "$* (CI must have it: scripts/install-deps.sh --with-services)"; fi
  echo "slurm test: skipped: $*" >&2
  exit 77
}
for p in munged mungekey munge unmunge slurmctld slurmd sbatch scontrol scancel squeue sinfo \
  srun python3; do
  command -v "$p" >/dev/null || unavailable "$p not found (Debian: slurmctld slurmd slurm-client munge)"
done
(($(id -u) == 0)) || unavailable "slurmd must run as root"
for b in glvq glvq-coordinator glvq-worker; do
  [[ -x "$bin_dir/$b" ]] || fail "$bin_dir/$b is not built (ninja $b)"
done
model="$fixtures/stories260K"
[[ -f "$model/model.safetensors" ]] || fail "no fixture model at $model"

# shellcheck source=local_slurm.sh
source "$here/local_slurm.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-slurm.XXXXXX")
chmod 0755 "$work"
cleanup() {
  local rc=$?
  slurm_stop
  if ((rc != 0)); then
    slurm_logs
    for out in "$work"/run*.out; do
      [[ -f "$out" ]] && { echo "---- $(basename "$out")"; cat "$out"; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

write_job() {  # OUTPUT_DIR FILE
  cat >"$2" <<EOF
apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: slurm-test
spec:
  model:
    path: $model
  quantizer:
    method: glvq
    bits: 2
    dim: 8
    groupSize: 64
    seed: 1
  output:
    path: $1
  workers:
    backend: cpu
EOF
}
write_job "$work/out-slurm" "$work/job.yaml"
write_job "$work/out-local" "$work/job-local.yaml"

slurm_start "$work/cluster" || fail "the local cluster did not start"

export GLVQ_BIN_DIR=$bin_dir GLVQ_STATE_DIR="$work/state" GLVQ_LISTEN_HOST=127.0.0.1
GLVQ_PORT=$(free_port)
export GLVQ_PORT GLVQ_HEALTH_TIMEOUT=30
glvq() { timeout 10 "$bin_dir/glvq" "$@" --coordinator "127.0.0.1:$GLVQ_PORT"; }

# Tasks committed so far (empty while the job or coordinator is not there).
tasks_done() {
  [[ -s "$work/state/job-id" ]] || return 0
  glvq status "$(<"$work/state/job-id")" --json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["status"]["progress"]["tasksDone"])' \
      2>/dev/null || true
}

# Run 1: each worker pauses 300 ms before a task; drain once 4 of the 35
# tasks are committed.
cd "$work"
GLVQ_WORKER_ARGS="--task-delay-ms 300" \
  timeout 90 sbatch --wait --time=5 --ntasks-per-node=2 -o "$work/run1.out" "$sbatch_script" "$work/job.yaml" \
  >"$work/sbatch1.log" 2>&1 &
sbatch_pid=$!
deadline=$(($(date +%s) + 60))
until [[ "$(tasks_done)" =~ ^[0-9]+$ ]] && (($(tasks_done) >= 4)); do
  (($(date +%s) < deadline)) || fail "run 1 committed no 4 tasks within 60 s"
  kill -0 "$sbatch_pid" 2>/dev/null || fail "run 1 ended before the drain: $(cat "$work/sbatch1.log")"
  sleep 0.2
done
job=$(awk '/^Submitted batch job/ { print $4 }' "$work/sbatch1.log")
[[ -n "$job" ]] || fail "no Slurm job id in: $(cat "$work/sbatch1.log")"
committed=$(tasks_done)
timeout 10 scancel --batch --signal=TERM "$job"
rc1=0
wait "$sbatch_pid" || rc1=$?
((rc1 == 75)) || fail "run 1 exited $rc1 after the drain signal, expected 75"
grep -q "glvq-worker: signal 15, draining" "$work/run1.out" || fail "run 1: no worker drained"
grep -q "drained; resubmit" "$work/run1.out" || fail "run 1: no drain message"
[[ ! -e "$work/out-slurm" ]] || fail "run 1 wrote an output although it was drained"
echo "slurm test: run 1 drained at $committed of 35 tasks, exit 75"

# Run 2: the same state dir; the coordinator resumes the job.
rc2=0
GLVQ_WORKER_ARGS="" timeout 90 sbatch --wait --time=5 --ntasks-per-node=2 -o "$work/run2.out" "$sbatch_script" \
  "$work/job.yaml" >"$work/sbatch2.log" 2>&1 || rc2=$?
((rc2 == 0)) || fail "run 2 exited $rc2: $(cat "$work/sbatch2.log")"
grep -q "resuming job $(<"$work/state/job-id")" "$work/run2.out" || fail "run 2 did not resume"
grep -q "SUCCEEDED" "$work/run2.out" || fail "run 2: the job did not succeed"

# The packed model: valid, and the same bytes as quantizing it here.
"$bin_dir/glvq" inspect "$work/out-slurm" >"$work/inspect.txt" || fail "glvq inspect failed"
grep -q "glvq-packed" "$work/inspect.txt" || fail "the output is not a glvq packed model"
"$bin_dir/glvq" quantize --config "$work/job-local.yaml" --workers 1 >"$work/local.txt" 2>&1 ||
  fail "glvq quantize failed: $(cat "$work/local.txt")"
diff -r "$work/out-slurm" "$work/out-local" >/dev/null ||
  fail "the Slurm output differs from glvq quantize's"
echo "slurm test: run 2 resumed and finished; output identical to glvq quantize"

# Run 3: more workers than the allocation has CPUs: the worker step cannot
# start, and the script must fail instead of watching a job nobody works on.
write_job "$work/out-none" "$work/job-none.yaml"
rc3=0
GLVQ_STATE_DIR="$work/state3" GLVQ_WORKERS_PER_NODE=3 timeout 60 sbatch --wait --time=5 \
  --ntasks-per-node=2 -o "$work/run3.out" "$sbatch_script" "$work/job-none.yaml" \
  >"$work/sbatch3.log" 2>&1 || rc3=$?
((rc3 == 1)) || fail "run 3 exited $rc3 with a worker step that cannot start, expected 1"
grep -q "the workers exited before job" "$work/run3.out" || fail "run 3: no message on the workers"
echo "slurm test: run 3 failed as it should without workers"
