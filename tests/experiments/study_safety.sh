#!/usr/bin/env bash
# tests/experiments/study_safety.sh STUDY — `study` never loses, mixes or silently restarts
# a run (issue 18): one check (or a few) for each case the issue lists, numbered as there.
#
#  1, 2  a latest checkpoint whose epoch is out of range ("9" of 2) or not a number
#        ("two") is refused before anything is written (it was a use-after-free, and a
#        silent restart from epoch 1 over the run's files)
#  3     --resume without a latest checkpoint in a directory with results is refused;
#        in a new directory it starts; the states a kill between two writes leaves resume
#  4     a run directory and a runs directory have one owner: a second `study train` or
#        `study sweep` on it is refused at once, naming the owner's pid; a stale file
#        where a temporary would go does not break a run (temporaries have unique names)
#  5     a FIFO in place of a data file or of the latest checkpoint is refused, not waited on
#  6     an --experiment-dir longer than 2047 bytes is used whole; one too long for its
#        files' paths is refused
#  7     a 4 GiB sparse checkpoint or IDX file is refused without being read (peak memory)
#  8     summary.csv and gradflow.csv must hold rows 1..epoch exactly, well formed, and
#        the best checkpoint must be the one the latest names: a cut last line, a short
#        row, repeated or missing epochs, a missing or foreign best checkpoint are refused
#        before training, naming the file
#  9     a plot that fails, or a PNG that gnuplot cuts short and still exits 0, is a
#        warning: the run completes and no broken PNG is installed
#  10    an --seed out of range, --lr 1e308 (inf in the schedule), a line break in
#        --data-dir are usage errors that create nothing; a missing config.txt is named;
#        a [2^47, 0] tensor in a checkpoint is a format error
#
# A refusal exits 1 (2 for a usage error) with one line on stderr, and leaves every file
# of the run as it was (same inode, size and time: an atomic rewrite would change the
# inode). Prints one line a check; exits non-zero at the first failure.
set -euo pipefail

study=${1:?usage: study_safety.sh PATH/TO/study}
tmp=$(mktemp -d)
bg=()
cleanup() {
  for p in "${bg[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

data=$tmp/data
python3 "$(dirname "$0")/tiny_fashion_mnist.py" "$data" 0 200 50
common=(--dataset fashion-mnist --data-dir "$data" --num-filters 4 --batch-size 50 --threads 1)

# every file of a run but its lock: name, inode, size, modification time
snapshot() { (cd "$1" && find . -path ./.lock -prune -o -type f -printf '%p %i %s %T@\n' | sort); }

# Runs `study train --resume` on dir and expects a refusal: exit 1, one line on stderr
# that contains each further argument, and no file of the run changed.
expect_refusal() {
  local dir=$1 st=0
  shift
  local before
  before=$(snapshot "$dir")
  timeout 60 "$study" train --experiment-dir "$dir" --resume >"$tmp/out" 2>"$tmp/err" || st=$?
  [ $st = 1 ] || fail "--resume of $dir exited $st, expected 1: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" = 1 ] || fail "--resume of $dir printed $(wc -l <"$tmp/err") lines: $(cat "$tmp/err")"
  for part in "$@"; do
    grep -qF -- "$part" "$tmp/err" || fail "the refusal lacks '$part': $(cat "$tmp/err")"
  done
  [ "$before" = "$(snapshot "$dir")" ] ||
    fail "the refused --resume changed files: $(diff <(echo "$before") <(snapshot "$dir"))"
}

# edit_checkpoint FILE PYTHON [ARG...]: runs the Python statements with h the file's
# header (a dict: h['__metadata__'] the metadata; the ARGs in sys.argv[3:]) and writes
# the file back with the data unchanged. set_meta FILE KEY VALUE sets one metadata entry.
edit_checkpoint() {
  python3 - "$@" <<'EOF'
import json, struct, sys
path, code = sys.argv[1], sys.argv[2]
b = open(path, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h, data = json.loads(b[8:8 + n]), b[8 + n:]
exec(code)
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(path, "wb").write(struct.pack("<Q", len(t)) + t + data)
EOF
}
set_meta() { edit_checkpoint "$1" "h['__metadata__'][sys.argv[3]] = sys.argv[4]" "$2" "$3"; }

# A finished 2-epoch run without its test_summary.csv: a run killed after its last epoch,
# which --resume finishes. Each case below works on a copy.
base=$tmp/base
"$study" train "${common[@]}" --epochs 2 --experiment-dir "$base" >/dev/null 2>"$tmp/base.err" ||
  { cat "$tmp/base.err" >&2; fail "the base run failed"; }
rm "$base/test_summary.csv"
fresh() { rm -rf "$tmp/$1"; cp -a "$base" "$tmp/$1"; echo "$tmp/$1"; }
# refused NAME EDIT PART...: a copy of the base named NAME, the shell code EDIT run in
# it, then expect_refusal with the PARTs
refused() {
  local name=$1 edit=$2
  shift 2
  d=$(fresh "$name")
  (cd "$d" && eval "$edit") || fail "$name: the edit failed"
  expect_refusal "$d" "$@"
}

# the untouched copy resumes (so the refusals below are the edits' doing)
d=$(fresh good)
"$study" train --experiment-dir "$d" --resume >/dev/null 2>"$tmp/err" || fail "--resume of the base failed: $(cat "$tmp/err")"
[ -s "$d/test_summary.csv" ] || fail "--resume of the base did not finish it"
ok "the base run resumes and completes"

# ---------------------------------------------------------------- 1, 2: the latest's epoch
latest=checkpoint_latest.safetensors
refused epoch9 "set_meta $latest epoch 9" "$latest" "epoch '9' is not an integer in 1..2"
for bad in two 2x " 2" 0 -1 99999999999999999999; do
  refused epoch_bad "set_meta $latest epoch '$bad'" "$latest: epoch '$bad' is not an integer in 1..2"
done
refused best_epoch "set_meta $latest best_epoch 3" "$latest: best_epoch '3' is not an integer in 1..2"
ok "1, 2: a latest checkpoint's epoch out of range or not a number is refused; nothing is written"

# ---------------------------------------------------------------- 3: no latest checkpoint
refused nolatest "rm $latest" "summary.csv: it holds 2 epochs, but there is no $latest"
"$study" train "${common[@]}" --epochs 1 --experiment-dir "$tmp/new" --resume >/dev/null 2>"$tmp/err" ||
  fail "--resume in a new directory failed: $(cat "$tmp/err")"
[ -s "$tmp/new/test_summary.csv" ] || fail "--resume in a new directory did not run"
# what a kill between two writes of an epoch leaves is resumed, and ends as the run did:
# the epoch's CSV rows without its checkpoints (the epoch runs again), a latest
# checkpoint without the best it names (the best is written from it), a best without
# the latest (the order earlier versions wrote them in)
one=$tmp/one
"$study" train "${common[@]}" --epochs 1 --experiment-dir "$one" >/dev/null 2>"$tmp/err" ||
  fail "the 1-epoch run failed: $(cat "$tmp/err")"
for state in "$latest checkpoint_best.safetensors" checkpoint_best.safetensors "$latest"; do
  rm -rf "$tmp/killed"
  cp -a "$one" "$tmp/killed"
  (cd "$tmp/killed" && rm test_summary.csv $state)
  "$study" train --experiment-dir "$tmp/killed" --resume >/dev/null 2>"$tmp/err" ||
    fail "--resume without $state failed: $(cat "$tmp/err")"
  for f in test_summary.csv gradflow.csv; do
    cmp -s "$one/$f" "$tmp/killed/$f" || fail "--resume without $state: $f differs from the run's"
  done
  cmp -s <(cut -d, -f1-6 "$one/summary.csv") <(cut -d, -f1-6 "$tmp/killed/summary.csv") ||
    fail "--resume without $state: summary.csv differs from the run's"
  [ -s "$tmp/killed/$latest" ] && [ -s "$tmp/killed/checkpoint_best.safetensors" ] ||
    fail "--resume without $state left no checkpoints: $(ls "$tmp/killed")"
done
ok "3: --resume without a latest checkpoint is refused where there are results, starts where there are none, and resumes what a kill leaves"

# ---------------------------------------------------------------- 4: one owner
# a run that takes a few seconds holds its directory; a second is refused at once
own=$tmp/own
"$study" train "${common[@]}" --epochs 30 --experiment-dir "$own" >/dev/null 2>"$tmp/own.err" &
bg+=($!)
owner=$!
for _ in $(seq 1 600); do
  [ "$(cat "$own/.lock" 2>/dev/null)" = "$owner" ] && break
  kill -0 "$owner" 2>/dev/null || break
  sleep 0.05
done
[ "$(cat "$own/.lock" 2>/dev/null)" = "$owner" ] || fail "the run holds no lock naming its pid $owner: $(ls -a "$own" 2>&1)"
for second in "train ${common[*]} --epochs 30 --seed 1 --experiment-dir $own" "train --experiment-dir $own --resume"; do
  st=0
  # shellcheck disable=SC2086
  timeout 20 "$study" $second >/dev/null 2>"$tmp/err" || st=$?
  [ $st = 1 ] || fail "'study $second' while another owns the directory exited $st: $(cat "$tmp/err")"
  grep -q "is in use by process $owner" "$tmp/err" || fail "the refusal does not name pid $owner: $(cat "$tmp/err")"
done
kill -9 "$owner"
wait "$owner" 2>/dev/null || true
grep -qx -- "--seed 0" "$own/config.txt" || fail "the refused run wrote config.txt: $(cat "$own/config.txt")"
# the lock goes with its owner (killed here)
if command -v flock >/dev/null; then
  flock -n "$own/.lock" true || fail "the lock outlived its owner"
fi
# a sweep owns its runs directory the same way
runs=$tmp/runs
sweep=(sweep depth --epochs 2 --train-limit 100 --num-filters 4 --threads 1 --data-dir "$data" --runs-dir "$runs")
"$study" "${sweep[@]}" >/dev/null 2>"$tmp/sweep1.err" &
sweeper=$!
bg+=($sweeper)
for _ in $(seq 1 600); do
  [ "$(cat "$runs/.lock" 2>/dev/null)" = "$sweeper" ] && break
  kill -0 "$sweeper" 2>/dev/null || break
  sleep 0.05
done
st=0
timeout 20 "$study" "${sweep[@]}" >/dev/null 2>"$tmp/err" || st=$?
[ $st = 1 ] && grep -q "is in use by process $sweeper" "$tmp/err" ||
  fail "a second sweep on the runs directory: status $st, $(cat "$tmp/err")"
wait "$sweeper" || fail "the first sweep failed: $(cat "$tmp/sweep1.err")"
grep -q "starting\|resuming" "$tmp/err" && fail "the refused sweep started a run: $(cat "$tmp/err")"
# a stale file or directory where a fixed temporary name would go breaks nothing
mkdir -p "$tmp/stale"
for f in config.txt summary.csv gradflow.csv test_summary.csv checkpoint_latest.safetensors curves.png; do
  mkdir "$tmp/stale/$f.tmp"
done
"$study" train "${common[@]}" --epochs 1 --experiment-dir "$tmp/stale" >/dev/null 2>"$tmp/err" ||
  fail "a run beside stale .tmp directories failed: $(cat "$tmp/err")"
[ -s "$tmp/stale/test_summary.csv" ] || fail "the run beside stale .tmp directories did not finish"
[ -z "$(find "$tmp/stale" -name '*.tmp.*')" ] || fail "temporary files left: $(ls -a "$tmp/stale")"
ok "4: a run or runs directory in use is refused at once, naming the owner's pid; temporaries have unique names"

# ---------------------------------------------------------------- 5: FIFOs
fifo_data=$tmp/fifo_data
cp -r "$data" "$fifo_data"
rm "$fifo_data/t10k-labels-idx1-ubyte.gz"
mkfifo "$fifo_data/t10k-labels-idx1-ubyte.gz"
st=0
timeout 20 "$study" train "${common[@]}" --data-dir "$fifo_data" --epochs 1 --experiment-dir "$tmp/fifo_run" \
  >/dev/null 2>"$tmp/err" || st=$?
[ $st = 1 ] && grep -q "t10k-labels-idx1-ubyte.gz: not a regular file" "$tmp/err" ||
  fail "a FIFO as a data file: status $st (124: it waited), $(cat "$tmp/err")"
[ -e "$tmp/fifo_run" ] && fail "a run that could not load its data created its directory"
refused fifo_ckpt "rm $latest && mkfifo $latest" "$latest: not a regular file"
d=$(fresh fifo_config)
rm "$d/config.txt"
mkfifo "$d/config.txt"
st=0
timeout 20 "$study" train --experiment-dir "$d" --resume >/dev/null 2>"$tmp/err" || st=$?
[ $st = 1 ] && grep -q "config.txt: not a regular file" "$tmp/err" ||
  fail "a FIFO as config.txt: status $st, $(cat "$tmp/err")"
ok "5: a FIFO in place of a data file, the latest checkpoint or config.txt is refused at once"

# ---------------------------------------------------------------- 6: long paths
# about 2300 bytes: longer than the old 2048-byte buffer, within PATH_MAX
long=$tmp
for _ in $(seq 1 9); do long=$long/$(printf 'd%.0s' $(seq 1 250)); done
"$study" train "${common[@]}" --epochs 1 --experiment-dir "$long" >/dev/null 2>"$tmp/err" ||
  fail "a run in a ${#long}-byte directory failed: $(cat "$tmp/err")"
[ -s "$long/test_summary.csv" ] || fail "the run's files are not in the ${#long}-byte directory it was given"
toolong=$long
for _ in $(seq 1 7); do toolong=$toolong/$(printf 'e%.0s' $(seq 1 250)); done
st=0
"$study" train "${common[@]}" --epochs 1 --experiment-dir "$toolong" >/dev/null 2>"$tmp/err" || st=$?
[ $st = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q -- "--experiment-dir wants a directory name of" "$tmp/err" ||
  fail "a ${#toolong}-byte --experiment-dir: status $st, $(cat "$tmp/err")"
[ -e "$long/$(printf 'e%.0s' $(seq 1 250))" ] && fail "a refused --experiment-dir was created"
ok "6: a ${#long}-byte --experiment-dir is used whole; a ${#toolong}-byte one is refused"

# ---------------------------------------------------------------- 7: bounded memory
# peak memory (KiB) of a command, which must fail
peak() { /usr/bin/time -f %M -o "$tmp/peak" "$@" >/dev/null 2>"$tmp/err" && fail "$* succeeded"; tail -n 1 "$tmp/peak"; }
if [ -x /usr/bin/time ]; then
  d=$(fresh sparse)
  rm "$d/checkpoint_latest.safetensors"
  truncate -s 4G "$d/checkpoint_latest.safetensors"
  kib=$(peak "$study" train --experiment-dir "$d" --resume)
  grep -q "checkpoint_latest.safetensors: the header is not JSON" "$tmp/err" || fail "a sparse checkpoint: $(cat "$tmp/err")"
  [ "$kib" -lt 1000000 ] || fail "refusing a 4 GiB sparse checkpoint took $kib KiB"
  sparse_data=$tmp/sparse_data
  cp -r "$data" "$sparse_data"
  gunzip "$sparse_data/t10k-images-idx3-ubyte.gz"
  truncate -s 4G "$sparse_data/t10k-images-idx3-ubyte"
  kib=$(peak "$study" train "${common[@]}" --data-dir "$sparse_data" --epochs 1 --experiment-dir "$tmp/sparse_run")
  grep -q "t10k-images-idx3-ubyte: header declares 50 images of 28x28" "$tmp/err" || fail "a sparse IDX file: $(cat "$tmp/err")"
  [ "$kib" -lt 1000000 ] || fail "refusing a 4 GiB sparse IDX file took $kib KiB"
  ok "7: a 4 GiB sparse checkpoint or IDX file is refused without being read"
fi

# ---------------------------------------------------------------- 8: the CSV files and the best checkpoint
refused cut "truncate -s -3 summary.csv" "summary.csv: its last line has no line break"
refused short "sed -i '\$ s/,[^,]*,[^,]*\$//' summary.csv" "summary.csv: line 3 has 5 fields, the header 7"
refused notnum "sed -i '3 s/^2,[^,]*,/2,0.5x,/' summary.csv" \
  "summary.csv: row 2, column train_acc: '0.5x' is not a number"
refused dup "tail -n 2 $base/summary.csv >>summary.csv" "summary.csv: row 3 has epoch '1', expected 3"
refused gap "sed -i 2d summary.csv" "summary.csv: row 1 has epoch '2', expected 1"
refused nosummary "rm summary.csv" "summary.csv: it is missing, but $latest is at epoch 2"
refused gradflow_short "sed -i '\$d' gradflow.csv" "gradflow.csv:" "rows are not whole epochs of 18 rows"
refused gradflow_epoch "sed -i '2 s/^1,/2,/' gradflow.csv" "gradflow.csv: row 1 has epoch '2', expected 1"
# the best checkpoint: missing where the latest names an earlier epoch, or another run's
refused nobest "rm checkpoint_best.safetensors && set_meta $latest best_epoch 1" \
  "checkpoint_best.safetensors: it is missing, but $latest names epoch 1 the best"
"$study" train "${common[@]}" --epochs 2 --seed 1 --experiment-dir "$tmp/seed1" >/dev/null 2>&1 ||
  fail "the seed-1 run failed"
refused foreign_best "cp $tmp/seed1/checkpoint_best.safetensors ." "checkpoint_best.safetensors: seed '1' is not the run's 0"
refused foreign_latest "set_meta $latest config \"\$(sed 's/^--lr 0.001\$/--lr 0.002/' config.txt)\"" \
  "$latest: it was saved with --lr 0.002, the run's config.txt has --lr 0.001"
ok "8: cut, short, malformed, repeated or missing rows and a missing or foreign best checkpoint are refused, naming the file"

# ---------------------------------------------------------------- 9: plots
# a gnuplot that cuts its PNG short (as on a full disk) yet exits 0, and one that fails
fake=$tmp/fakebin
mkdir -p "$fake"
cat >"$fake/gnuplot" <<'EOF'
#!/bin/sh
# study runs: gnuplot -e "out='NAME'" SCRIPT
out=$(printf '%s' "$2" | sed "s/^out='\(.*\)'$/\1/")
[ -n "${FAKE_GNUPLOT_FAIL:-}" ] && { echo "fake gnuplot: failing" >&2; exit 1; }
printf '\211PNG\r\n\032\n\0\0\0\rIHDR' >"$out"
exit 0
EOF
chmod +x "$fake/gnuplot"
for mode in cut fail; do
  p=$tmp/plot_$mode
  st=0
  if [ $mode = fail ]; then export FAKE_GNUPLOT_FAIL=1; fi
  PATH=$fake:$PATH "$study" train "${common[@]}" --epochs 1 --experiment-dir "$p" >/dev/null 2>"$tmp/err" || st=$?
  unset FAKE_GNUPLOT_FAIL
  [ $st = 0 ] || fail "a run whose plots fail ($mode) exited $st: $(cat "$tmp/err")"
  [ -s "$p/test_summary.csv" ] || fail "a run whose plots fail ($mode) is incomplete"
  [ "$(grep -c "warning: no curves.png\|warning: no gradflow.png" "$tmp/err")" = 2 ] ||
    fail "no warning for each plot ($mode): $(cat "$tmp/err")"
  [ -e "$p/curves.png" ] || [ -e "$p/gradflow.png" ] && fail "a broken PNG was installed ($mode): $(ls "$p")"
  [ -z "$(find "$p" -name '*.tmp*')" ] || fail "temporary files left ($mode): $(ls -a "$p")"
done
grep -q "wrote no whole PNG" "$tmp/err" && fail "the failing gnuplot was reported as a cut PNG"
ok "9: a failed plot or a cut PNG is a warning; the run completes and installs no broken PNG"

# ---------------------------------------------------------------- 10: smaller
for bad in "--seed 99999999999999999999" "--seed 9223372036854775808" "--lr 1e308" "--lr-min 1e308"; do
  st=0
  # shellcheck disable=SC2086
  "$study" train "${common[@]}" $bad --experiment-dir "$tmp/never" >/dev/null 2>"$tmp/err" || st=$?
  [ $st = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] || fail "'$bad' exited $st: $(cat "$tmp/err")"
  [ -e "$tmp/never" ] && fail "'$bad' created the experiment directory"
done
st=0
"$study" train "${common[@]}" --data-dir "$data
--lr 5" --experiment-dir "$tmp/never" >/dev/null 2>"$tmp/err" || st=$?
[ $st = 2 ] && grep -q "line break" "$tmp/err" || fail "a line break in --data-dir: status $st, $(cat "$tmp/err")"
[ -e "$tmp/never" ] && fail "a --data-dir with a line break created the experiment directory"
refused noconfig "rm config.txt" "config.txt (the flags of the run) is missing"
refused huge_shape "edit_checkpoint $latest \"h['huge'] = {'dtype': 'F32', 'shape': [2**47, 0], 'data_offsets': [0, 0]}\"" \
  "$latest: tensor 'huge': F32 [140737488355328,0] is not a shape"
ok "10: --seed out of range, --lr 1e308, a line break in --data-dir exit 2 and create nothing; a missing config.txt and an absurd shape are named"
