#!/usr/bin/env bash
# tests/experiments/study_mpi.sh STUDY — `study train` under `mpirun -np 2`.
#
# On a tiny Fashion-MNIST-format data set: 2 ranks with --sync-bn end with the numbers
# one process gets (summary.csv and test_summary.csv within 1e-4 relative: float32
# reduction order is the only difference), with rank 0 alone writing the directory;
# a job killed after its first checkpoint resumes under another number of ranks (1)
# and ends within the same tolerance; a batch size that does not split among the
# ranks is refused with a message (exit 2), as is a run directory another process
# holds. Skips, with the reason, when this study was built without MPI or mpirun is
# missing. Prints one line a check; exits non-zero at the first failure.
set -euo pipefail

study=${1:?usage: study_mpi.sh PATH/TO/study}
command -v mpirun >/dev/null || { echo "skip: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
tmp=$(mktemp -d)
bg=""
trap 'if [ -n "$bg" ]; then kill -TERM "$bg" 2>/dev/null || true; fi; if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# root runs the tests in CI containers; mpirun refuses root unless told
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe)

data=$tmp/data
python3 "$(dirname "$0")/tiny_fashion_mnist.py" "$data" 0 400 100
cfg=(--dataset fashion-mnist --data-dir "$data" --num-filters 4 --batch-size 50 --threads 1
     --num-blocks-per-stage 1 --bn before --epochs 3)

# a study built without MPI refuses to be N copies of one run
st=0; "${mpi[@]}" "$study" train "${cfg[@]}" --experiment-dir "$tmp/probe" --epochs 1 >"$tmp/probe.out" 2>&1 || st=$?
if grep -q "built without MPI" "$tmp/probe.out"; then
  echo "skip: this study was built without MPI (meson found no MPI)"
  exit 77
fi
[ $st = 0 ] || fail "a 1-epoch run under mpirun failed ($st): $(cat "$tmp/probe.out")"
grep -q " x 2 ranks (synchronised batch norm)\| x 2 ranks (per-rank batch norm)" "$tmp/probe.out" ||
  fail "the run does not say it has 2 ranks: $(cat "$tmp/probe.out")"
[ "$(grep -c '^epoch 1/1' "$tmp/probe.out")" = 1 ] || fail "progress lines from more than rank 0: $(cat "$tmp/probe.out")"
ok "under mpirun the run says its ranks, and only rank 0 prints progress"

# close: every number of two CSV files (but the seconds column) within 1e-4 relative
close() {
  python3 - "$1" "$2" <<'EOF'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(a) == len(b), f"{len(a)} rows against {len(b)}"
worst = 0
for ra, rb in zip(a, b):
    for k in ra:
        if k == "seconds":
            continue
        x, y = float(ra[k]), float(rb[k])
        worst = max(worst, abs(x - y) / max(abs(y), 1e-3))
print(f"{worst:.2g}")
sys.exit(0 if worst <= 1e-4 else 1)
EOF
}

one=$tmp/one
"$study" train "${cfg[@]}" --sync-bn --experiment-dir "$one" >/dev/null 2>"$tmp/one.err" ||
  { cat "$tmp/one.err" >&2; fail "the one-process run failed"; }
two=$tmp/two
"${mpi[@]}" "$study" train "${cfg[@]}" --sync-bn --experiment-dir "$two" >/dev/null 2>"$tmp/two.err" ||
  { cat "$tmp/two.err" >&2; fail "the 2-rank run failed"; }
d1=$(close "$two/summary.csv" "$one/summary.csv") || fail "2 ranks' summary.csv differs from one process's by $d1"
d2=$(close "$two/test_summary.csv" "$one/test_summary.csv") || fail "2 ranks' test_summary.csv differs by $d2"
cmp -s "$two/config.txt" "$one/config.txt" || fail "config.txt differs: $(diff "$two/config.txt" "$one/config.txt")"
[ "$(find "$two" -name '*.tmp*' | wc -l)" = 0 ] || fail "temporary files left"
ok "2 ranks with --sync-bn: summary.csv within $d1 and test_summary.csv within $d2 of one process"

# per-rank batch norm is another computation: it differs, as documented
pr=$tmp/per-rank
"${mpi[@]}" "$study" train "${cfg[@]}" --experiment-dir "$pr" >/dev/null 2>"$tmp/pr.err" ||
  { cat "$tmp/pr.err" >&2; fail "the per-rank batch norm run failed"; }
if d=$(close "$pr/summary.csv" "$one/summary.csv"); then fail "per-rank batch norm equals synchronised ($d)"; fi
ok "2 ranks with per-rank batch norm differ from one process by $d (each rank normalises its own 25 images)"

# killed after its first checkpoint, resumed with 1 rank
k=$tmp/k
"${mpi[@]}" "$study" train "${cfg[@]}" --sync-bn --experiment-dir "$k" >/dev/null 2>"$tmp/k.err" &
bg=$!
for _ in $(seq 1 3000); do
  [ -e "$k/checkpoint_latest.safetensors" ] && break
  kill -0 "$bg" 2>/dev/null || break
  sleep 0.01
done
kill -TERM "$bg" 2>/dev/null || true # mpirun passes it on to the ranks (SIGKILL would orphan them)
wait "$bg" 2>/dev/null || true
bg=""
[ -e "$k/checkpoint_latest.safetensors" ] || fail "the 2-rank job made no checkpoint: $(cat "$tmp/k.err")"
# a quiet machine may finish the tiny job before the signal lands: then the state a kill
# after the last checkpoint leaves (no test_summary.csv) is what is resumed
rm -f "$k/test_summary.csv"
killed_at=$(($(wc -l <"$k/summary.csv") - 1))
"$study" train --experiment-dir "$k" --resume >/dev/null 2>"$tmp/kr.err" ||
  { cat "$tmp/kr.err" >&2; fail "resuming the killed job on 1 rank failed"; }
d=$(close "$k/summary.csv" "$one/summary.csv") || fail "resumed on 1 rank, summary.csv differs by $d"
d=$(close "$k/test_summary.csv" "$one/test_summary.csv") || fail "resumed on 1 rank, test_summary.csv differs by $d"
ok "a 2-rank job killed after epoch $killed_at of 3 resumes on 1 rank and ends within $d"

# bad use: a batch size that does not split; a directory another run holds
st=0; "${mpi[@]}" "$study" train "${cfg[@]}" --batch-size 51 --experiment-dir "$tmp/odd" >/dev/null 2>"$tmp/err" || st=$?
[ $st != 0 ] || fail "a batch size of 51 on 2 ranks was accepted"
grep -q -- "--batch-size 51 does not split into 2 equal shares" "$tmp/err" || fail "no message for batch 51: $(cat "$tmp/err")"
[ -e "$tmp/odd" ] && fail "the refused run created its directory"
ok "a batch size that does not split among the ranks is refused, nothing created"
