#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost runs deploy/slurm/batch.sbatch as
# a 4-task array over 8 tiles cut from Autzen (jittered, so halos cross tile
# and shard boundaries); the outputs must be byte-identical to a
# single-process `pointpipe batch` of the same folder, and `batch-report`
# must pass. Prints both wall times.
#
#   deploy/slurm/test-slurm.sh            (run by .ci/run; needs root for the daemons)
#
# Environment: POINTPIPE (binary; default target/release/pointpipe, built if
# missing), SOURCE (default ../shared/data/las/pdal/autzen_trim.laz), COPIES
# (jittered copies of every point, default 4), KEEP=1 keeps the temp folder.
# Installs slurm-wlm and munge with apt when missing. Everything (munge key
# and socket, slurm.conf, state, spool, logs, tiles) lives in a temp folder;
# daemons listen on loopback only and are stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
SOURCE="${SOURCE:-$REPO/../shared/data/las/pdal/autzen_trim.laz}"
COPIES="${COPIES:-4}"
BATCH_ARGS="--voxel-size 1 --normal-radius 4"   # Autzen is in feet
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"

test -f "$SOURCE" || { echo "missing $SOURCE"; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
cargo build --release --locked --bin pointpipe --example cut_tiles
BIN="${POINTPIPE:-$CARGO_TARGET_DIR/release/pointpipe}"
CUT="$CARGO_TARGET_DIR/release/examples/cut_tiles"

WORK="$(mktemp -d /tmp/pointpipe-slurm.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local status=$?
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$WORK/slurmctld.up" ]; then
    scancel --quiet --user=root 2>/dev/null || true
  fi
  # Daemons in reverse start order, by PID.
  for ((k = ${#PIDS[@]} - 1; k >= 0; k--)); do
    kill "${PIDS[k]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ $status -ne 0 ]; then
    echo "--- test-slurm failed (status $status); logs:"
    tail -n 30 "$WORK"/log/* 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ] || [ $status -ne 0 ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# A free TCP port on loopback, from a starting point.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

mkdir -p "$WORK"/{munge,state,spool,log,tiles,out-slurm,out-single}
chmod 700 "$WORK/munge"

echo "== tiles: 8 cut from $(basename "$SOURCE"), $COPIES jittered copies"
"$CUT" "$SOURCE" "$WORK/tiles" "$COPIES"

echo "== munged (key and socket in $WORK/munge)"
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
MUNGE_SOCKET="$WORK/munge/munge.socket"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/log/munged.log" \
  --seed-file="$WORK/munge/seed" >"$WORK/log/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCKET" ] || { echo "munged did not start"; exit 1; }

echo "== slurm.conf (localhost only)"
CTLD_PORT=$(free_port 16817)
SLURMD_PORT=$(free_port $((CTLD_PORT + 1)))
NODE_LINE=$(slurmd -C | head -n 1)
CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
MEM=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
export SLURM_CONF="$WORK/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=pointpipe-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

echo "== slurmctld, slurmd"
slurmctld -D -c -f "$SLURM_CONF" >"$WORK/log/slurmctld.out" 2>&1 &
PIDS+=($!)
touch "$WORK/slurmctld.up"
slurmd -D -N localhost -f "$SLURM_CONF" >"$WORK/log/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 120); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || { echo "node not idle: '$state'"; exit 1; }
sinfo

echo "== sbatch: 4-task array (deploy/slurm/batch.sbatch)"
export POINTPIPE="$BIN" INPUT_DIR="$WORK/tiles" OUTPUT_DIR="$WORK/out-slurm" BATCH_ARGS
t0=$(date +%s.%N)
JOB=$(sbatch --parsable --array=0-3 --cpus-per-task=1 --mem=1G --export=ALL \
  --output="$WORK/log/task-%a.log" deploy/slurm/batch.sbatch)
# Poll every 0.2 s (sbatch --wait polls at up to 10 s intervals, which would
# dominate the wall time of a short job).
for _ in $(seq 4500); do
  [ -z "$(squeue -h -j "$JOB" -o %i 2>/dev/null)" ] && break
  sleep 0.2
done
t1=$(date +%s.%N)
[ -z "$(squeue -h -j "$JOB" -o %i)" ] || { echo "job $JOB still queued after 900 s"; exit 1; }
cat "$WORK"/log/task-*.log
# Every task completed with exit code 0 (no accounting: ask slurmctld, which
# keeps finished jobs for MinJobAge = 300 s).
states=$(scontrol -o show job "$JOB" | grep -o 'JobState=[A-Z]* .*ExitCode=[0-9:]*' \
  | sed 's/JobState=\([A-Z]*\) .*ExitCode=\([0-9:]*\)/\1 \2/' | sort | uniq -c)
echo "$states"
[ "$(echo "$states" | awk '{print $2, $3}')" = "COMPLETED 0:0" ] \
  || { echo "not every task completed with exit code 0"; exit 1; }
[ "$(echo "$states" | awk '{print $1}')" = 4 ] || { echo "expected 4 tasks"; exit 1; }

echo "== batch-report"
"$BIN" batch-report "$WORK/out-slurm"
"$BIN" batch-report "$WORK/out-slurm" --json >"$WORK/report.json"
python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["shard_count"] == 4 and r["shards_reported"] == [0, 1, 2, 3], r
assert (r["tiles"], r["done"], r["failed"], r["missing"]) == (8, 8, 0, 0), r
PY
for i in 0 1 2 3; do
  grep -q '"source": "slurm"' "$WORK/out-slurm/_reports/shard-$i.json"
done

echo "== single process: pointpipe batch (same folder, same options)"
t2=$(date +%s.%N)
# shellcheck disable=SC2086
"$BIN" batch "$WORK/tiles" "$WORK/out-single" $BATCH_ARGS
t3=$(date +%s.%N)

echo "== byte-for-byte comparison"
compared=0
while IFS= read -r -d '' f; do
  rel="${f#"$WORK/out-single/"}"
  cmp "$f" "$WORK/out-slurm/$rel"
  compared=$((compared + 1))
done < <(find "$WORK/out-single" -type f -not -path '*/_reports/*' -print0)
n_slurm=$(find "$WORK/out-slurm" -type f -not -path '*/_reports/*' | wc -l)
[ "$compared" -eq "$n_slurm" ] || { echo "file counts differ: $compared vs $n_slurm"; exit 1; }
[ "$compared" -eq 16 ] || { echo "expected 8 tiles + 8 parameter files, got $compared"; exit 1; }

points=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['points_in'])" "$WORK/report.json")
slowest=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds_max'])" "$WORK/report.json")
printf 'slurm: 4-task array on %s CPUs %.2f s (sbatch to last task gone; slowest shard %.2f s); single process %.2f s; %s files identical; %s points in 8 tiles\n' \
  "$CPUS" "$(awk "BEGIN { print $t1 - $t0 }")" "$slowest" "$(awk "BEGIN { print $t3 - $t2 }")" "$compared" "$points"
echo "test-slurm: 1 passed, 0 failed"
