#!/usr/bin/env bash
# tests/experiments/study_train.sh STUDY — `study train` end to end on a tiny data set.
#
# Writes a Fashion-MNIST-format data set (gzip IDX files, 28x28, a label-dependent
# stripe plus noise) into a temporary folder, then checks: a 2-epoch run writes every
# file with the right columns and rows; a run killed with SIGKILL after its first
# checkpoint and resumed ends with the same summary, gradient flow and test numbers as
# an uninterrupted run; the refusals, the bad flags and --help; the note when gnuplot
# is missing. Prints one line a check; exits non-zero at the first failure.
set -euo pipefail

study=${1:?usage: study_train.sh PATH/TO/study}
tmp=$(mktemp -d)
bg=""
cleanup() {
  if [ -n "$bg" ]; then kill -9 "$bg" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# ---------------------------------------------------------------- the data set
data=$tmp/data
python3 "$(dirname "$0")/tiny_fashion_mnist.py" "$data" 0 400 100

common=(--dataset fashion-mnist --data-dir "$data" --num-filters 4 --batch-size 50 --threads 1)

have_gnuplot=0
command -v gnuplot >/dev/null && have_gnuplot=1

# rows of a CSV file without its header
rows() { echo $(($(wc -l <"$1") - 1)); }
header() { head -n 1 "$1"; }

# ---------------------------------------------------------------- a 2-epoch run
a=$tmp/a
st=0
"$study" train "${common[@]}" --num-blocks-per-stage 0 --epochs 2 --experiment-dir "$a" \
  >"$tmp/a.out" 2>"$tmp/a.err" || st=$?
[ $st = 0 ] || { cat "$tmp/a.err" >&2; fail "the 2-epoch run exited $st"; }
for f in config.txt summary.csv gradflow.csv test_summary.csv checkpoint_latest.safetensors \
         checkpoint_best.safetensors; do
  [ -s "$a/$f" ] || fail "2-epoch run: $f missing or empty"
done
[ "$(header "$a/summary.csv")" = "epoch,train_acc,train_loss,val_acc,val_loss,lr,seconds" ] ||
  fail "summary.csv header: $(header "$a/summary.csv")"
[ "$(rows "$a/summary.csv")" = 2 ] || fail "summary.csv has $(rows "$a/summary.csv") rows, expected 2"
[ "$(header "$a/gradflow.csv")" = "epoch,layer,kind,mean_abs,rms,max_abs,zero_frac" ] ||
  fail "gradflow.csv header: $(header "$a/gradflow.csv")"
# VGG_08 without block batch norm: 7 convs, the entry's bn gamma and the linear layer
# are 9 weight tensors in 9 layers, so 9 weight rows and 9 activation rows an epoch
for e in 1 2; do
  w=$(grep -c "^$e,[^,]*,weight," "$a/gradflow.csv" || true)
  b=$(grep -c "^$e,[^,]*,bn_weight," "$a/gradflow.csv" || true)
  act=$(grep -c "^$e,[^,]*,activation," "$a/gradflow.csv" || true)
  [ "$w" = 8 ] && [ "$b" = 1 ] && [ "$act" = 9 ] ||
    fail "gradflow.csv epoch $e: $w weight, $b bn_weight, $act activation rows; expected 8, 1, 9"
done
[ "$(rows "$a/gradflow.csv")" = 36 ] || fail "gradflow.csv has $(rows "$a/gradflow.csv") rows, expected 36"
for layer in input_conv_conv_0 input_conv_bn_0 reduction_block_0_conv_0 reduction_block_2_conv_1 logit_linear_layer; do
  grep -q "^1,$layer,.*weight," "$a/gradflow.csv" || fail "gradflow.csv has no weight row for $layer"
  grep -q "^1,$layer,activation," "$a/gradflow.csv" || fail "gradflow.csv has no activation row for $layer"
done
awk -F, 'NR > 1 && !($4 > 0) { bad = 1 } END { exit bad }' "$a/gradflow.csv" ||
  fail "gradflow.csv has a zero or missing mean |g|"
[ "$(header "$a/test_summary.csv")" = "test_acc,test_loss" ] || fail "test_summary.csv header"
[ "$(rows "$a/test_summary.csv")" = 1 ] || fail "test_summary.csv rows"
grep -q -- "--num-blocks-per-stage 0" "$a/config.txt" || fail "config.txt lacks --num-blocks-per-stage 0"
grep -q "gradient flow" "$a.out" || fail "no gradient-flow verdict in the summary: $(cat "$a.out")"
[ "$(grep -c '^epoch ' "$tmp/a.err")" = 2 ] || fail "expected one progress line an epoch on stderr"
if [ $have_gnuplot = 1 ]; then
  for f in curves.png gradflow.png curves.gp gradflow.gp; do
    [ -s "$a/$f" ] || fail "$f missing although gnuplot is installed"
  done
  [ "$(head -c 4 "$a/curves.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "curves.png is not a PNG"
fi
ls "$a" | grep -q '\.tmp$' && fail "temporary files left in the run: $(ls "$a")"
ok "a 2-epoch run writes every file with its columns and rows"

# ---------------------------------------------------------------- refusals
st=0; "$study" train "${common[@]}" --epochs 2 --experiment-dir "$a" 2>"$tmp/err" || st=$?
[ $st = 1 ] || fail "a new run in a used directory exited $st, expected 1"
grep -q -- "--resume" "$tmp/err" || fail "the refusal does not suggest --resume: $(cat "$tmp/err")"
st=0; "$study" train --experiment-dir "$a" --resume >/dev/null 2>"$tmp/err" || st=$?
[ $st = 0 ] && grep -q "nothing to do" "$tmp/err" || fail "--resume on a complete run: status $st, $(cat "$tmp/err")"
ok "refuses a used directory; --resume of a complete run does nothing"

# ---------------------------------------------------------------- kill -9 and --resume
# a network with every feature whose state must survive: block batch norm, dropout masks,
# Adam's moments and step counts
cfg=("${common[@]}" --num-blocks-per-stage 1 --bn after --dropout 0.2 --epochs 3)
ref=$tmp/ref
"$study" train "${cfg[@]}" --experiment-dir "$ref" >/dev/null 2>"$tmp/ref.err" ||
  { cat "$tmp/ref.err" >&2; fail "the uninterrupted run failed"; }
[ "$(grep -c "^1,[^,]*,bn_weight," "$ref/gradflow.csv")" = 13 ] || fail "expected 13 bn_weight rows an epoch with --bn after (the entry's and 12 in the blocks)"

k=$tmp/k
"$study" train "${cfg[@]}" --experiment-dir "$k" >/dev/null 2>"$tmp/k.err" &
bg=$!
for _ in $(seq 1 3000); do
  [ -e "$k/checkpoint_latest.safetensors" ] && break
  kill -0 "$bg" 2>/dev/null || break
  sleep 0.01
done
kill -9 "$bg" 2>/dev/null || true
wait "$bg" 2>/dev/null || true
bg=""
[ -e "$k/checkpoint_latest.safetensors" ] || fail "the background run made no checkpoint: $(cat "$tmp/k.err")"
[ -e "$k/test_summary.csv" ] && fail "the background run finished before it was killed (too fast to test)"
killed_at=$(rows "$k/summary.csv")

cp -r "$k" "$tmp/k2"
st=0; "$study" train --experiment-dir "$tmp/k2" --resume --lr 0.5 2>"$tmp/err" || st=$?
[ $st = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] || fail "--resume with another --lr: status $st, $(cat "$tmp/err")"

"$study" train --experiment-dir "$k" --resume >/dev/null 2>"$tmp/r.err" ||
  { cat "$tmp/r.err" >&2; fail "--resume failed"; }
grep -q "resuming" "$tmp/r.err" || fail "--resume did not say it resumed: $(cat "$tmp/r.err")"
cmp <(cut -d, -f1-6 "$ref/summary.csv") <(cut -d, -f1-6 "$k/summary.csv") ||
  fail "resumed summary.csv differs: $(diff <(cut -d, -f1-6 "$ref/summary.csv") <(cut -d, -f1-6 "$k/summary.csv"))"
cmp "$ref/gradflow.csv" "$k/gradflow.csv" || fail "resumed gradflow.csv differs"
cmp "$ref/test_summary.csv" "$k/test_summary.csv" || fail "resumed test_summary.csv differs"
ok "killed after epoch $killed_at of 3 and resumed: summary, gradient flow and test numbers are bit-identical"

# ---------------------------------------------------------------- bad flags, --help
for bad in "--bn sideways" "--lr -1" "--batch-size 0" "--frobnicate" "--epochs" "--dropout 1" "stray"; do
  st=0
  # shellcheck disable=SC2086
  "$study" train $bad --experiment-dir "$tmp/never" >/dev/null 2>"$tmp/err" || st=$?
  [ $st = 2 ] || fail "'$bad' exited $st, expected 2"
  [ "$(wc -l <"$tmp/err")" = 1 ] || fail "'$bad' printed $(wc -l <"$tmp/err") lines: $(cat "$tmp/err")"
done
[ -e "$tmp/never" ] && fail "a usage error created the experiment directory"
"$study" train --help >"$tmp/help" || fail "--help exited $?"
grep -q -- "--num-blocks-per-stage" "$tmp/help" || fail "--help does not list --num-blocks-per-stage"
"$study" --help >/dev/null || fail "study --help exited $?"
ok "bad flags exit 2 with one line; --help exits 0"

# ---------------------------------------------------------------- without gnuplot
n=$tmp/noplot
PATH=/nonexistent "$study" train "${common[@]}" --epochs 1 --train-limit 100 --experiment-dir "$n" \
  >/dev/null 2>"$tmp/n.err" || { cat "$tmp/n.err" >&2; fail "the run without gnuplot failed"; }
grep -q "gnuplot is not installed" "$tmp/n.err" || fail "no note about gnuplot: $(cat "$tmp/n.err")"
[ -e "$n/curves.png" ] && fail "a plot without gnuplot?"
[ -s "$n/test_summary.csv" ] || fail "the run without gnuplot did not finish"
grep -q -- "--train-limit 100" "$n/config.txt" || fail "config.txt lacks --train-limit"
ok "without gnuplot the CSV files are written and a note says so"
