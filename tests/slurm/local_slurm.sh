# shellcheck shell=bash
# A private single-node Slurm cluster on this machine, for tests: munged,
# slurmctld and slurmd run as children of the sourcing script, with every
# file (key, sockets, config, state, logs) under one directory and free
# ports, so they never touch /etc or a system Slurm. Needs root (slurmd
# starts job steps as the submitting user). Sourced by run_slurm_test.sh.
#
#   slurm_start DIR   start munged, slurmctld, slurmd; wait until the node is idle;
#                     exports SLURM_CONF (clients use it)
#   slurm_stop        stop them by PID (slurmd, slurmctld, munged)
#   slurm_logs        print the tail of every daemon log

slurm_pids=()

# A free TCP port on 127.0.0.1 (the kernel picks it; released at once).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs "$@" until it succeeds or DEADLINE (seconds since the epoch) passes.
retry_until() {
  local deadline=$1
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
}

start_munge() {
  local dir=$1
  mkdir -p "$dir/munge-key" "$dir/munge-run"
  chmod 0700 "$dir/munge-key"
  chmod 0755 "$dir/munge-run"  # munged refuses a socket directory only root can search
  mungekey -c -k "$dir/munge-key/munge.key"
  munged -F --socket="$dir/munge-run/munge.socket" --key-file="$dir/munge-key/munge.key" \
    --pid-file="$dir/munge-run/munged.pid" --seed-file="$dir/munge-run/munged.seed" \
    --log-file="$dir/munged.log" >"$dir/munged.out" 2>&1 &
  slurm_pids+=($!)
  munge_socket="$dir/munge-run/munge.socket"
  retry_until $(($(date +%s) + 20)) \
    bash -c "munge -n -S '$munge_socket' | unmunge -S '$munge_socket'" || {
    echo "local_slurm: munged did not answer within 20 s" >&2
    return 1
  }
}

write_slurm_conf() {
  local dir=$1
  mkdir -p "$dir/state" "$dir/spool"
  # CPUs must not exceed what the machine has, or slurmd drains the node.
  cat >"$dir/slurm.conf" <<EOF
ClusterName=glvqtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=4
KillWait=30
NodeName=localnode NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$(nproc) RealMemory=500 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

node_idle() {
  [[ "$(timeout 3 sinfo -h -N -o '%t' 2>/dev/null)" == idle ]]
}

slurm_start() {
  slurm_dir=$1
  start_munge "$slurm_dir" || return 1
  write_slurm_conf "$slurm_dir"
  export SLURM_CONF="$slurm_dir/slurm.conf"
  # -c: a fresh state, never jobs of an earlier run.
  slurmctld -D -c -f "$SLURM_CONF" >"$slurm_dir/slurmctld.out" 2>&1 &
  slurm_pids+=($!)
  slurmd -D -N localnode -f "$SLURM_CONF" >"$slurm_dir/slurmd.out" 2>&1 &
  slurm_pids+=($!)
  retry_until $(($(date +%s) + 60)) node_idle || {
    echo "local_slurm: the node did not become idle within 60 s" >&2
    timeout 3 sinfo -N -l >&2 || true
    return 1
  }
}

jobs_left() {
  timeout 3 squeue -h -o '%A' 2>/dev/null | grep -q .
}
no_jobs_left() { ! jobs_left; }

# Cancels the jobs still there (a failed run's): their steps run under
# slurmstepd, which outlives slurmd. Then stops the daemons in reverse
# order of their start: slurmd, slurmctld, munged.
slurm_stop() {
  local i pid jobs
  if ((${#slurm_pids[@]})) && jobs_left; then
    jobs=$(timeout 3 squeue -h -o '%A' 2>/dev/null || true)
    # shellcheck disable=SC2086  # one job id per word
    [[ -n "$jobs" ]] && timeout 5 scancel $jobs
    retry_until $(($(date +%s) + 40)) no_jobs_left ||
      echo "local_slurm: jobs still running after scancel" >&2
  fi
  for ((i = ${#slurm_pids[@]} - 1; i >= 0; i--)); do
    pid=${slurm_pids[i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  slurm_pids=()
}

slurm_logs() {
  local log
  for log in "$slurm_dir"/slurmctld.log "$slurm_dir"/slurmd.log "$slurm_dir"/munged.log; do
    [[ -f "$log" ]] && { echo "---- $(basename "$log") (last 30 lines)"; tail -n 30 "$log"; }
  done
}
