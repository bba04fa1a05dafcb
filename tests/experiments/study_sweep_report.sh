#!/usr/bin/env bash
# tests/experiments/study_sweep_report.sh STUDY — `study sweep` and `study report` end to end.
#
# Writes a tiny Fashion-MNIST-format data set (gzip IDX files), sweeps the `depth` plan
# (VGG_08 and VGG_38, 1 epoch, 4 filters, 40 images), then checks: both runs complete and
# are linked from the plan folder; a second sweep skips both without touching a file; an
# interrupted run is resumed; a sweep with another budget is refused; `all` runs each
# configuration once; failing children make the sweep exit 1; REPORT.md's table equals
# the CSV files; bad plan names and --help. Prints one line a check; exits non-zero at
# the first failure.
set -euo pipefail

study=${1:?usage: study_sweep_report.sh PATH/TO/study}
tmp=$(mktemp -d)
# KEEP=1 keeps the temporary folder (runs, REPORT.md) for a look afterwards
trap 'if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# ---------------------------------------------------------------- the data set
data=$tmp/data
python3 "$(dirname "$0")/tiny_fashion_mnist.py" "$data" 1 100 30

runs=$tmp/runs
budget=(--epochs 1 --train-limit 40 --num-filters 4 --threads 1 --data-dir "$data" --runs-dir "$runs")
have_gnuplot=0
command -v gnuplot >/dev/null && have_gnuplot=1

# every file of the depth plan's runs with its modification time (nanoseconds)
stamps() { find "$runs/configs" -type f -printf '%p %T@\n' | sort; }
# column `name` of the last row of a CSV file
last() { awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
                               { v = $c } END { print v }' "$1"; }

# ---------------------------------------------------------------- the sweep
"$study" sweep depth "${budget[@]}" >"$tmp/s1.out" 2>"$tmp/s1.err" ||
  { cat "$tmp/s1.err" >&2; fail "sweep depth exited $?"; }
for r in VGG_08_seed0 VGG_38_seed0; do
  [ -d "$runs/configs/$r" ] || fail "no run directory configs/$r: $(ls -R "$runs")"
  [ -s "$runs/depth/$r/test_summary.csv" ] || fail "depth/$r is not complete: $(cat "$tmp/s1.err")"
  [ "$(readlink "$runs/depth/$r")" = "../configs/$r" ] || fail "depth/$r is not a link to ../configs/$r"
  grep -qx -- "--num-blocks-per-stage $([ $r = VGG_08_seed0 ] && echo 0 || echo 5)" "$runs/configs/$r/config.txt" ||
    fail "$r was not trained with its depth: $(cat "$runs/configs/$r/config.txt")"
  grep -qx -- "--epochs 1" "$runs/configs/$r/sweep_args.txt" || fail "$r: sweep_args.txt lacks --epochs 1"
done
printf 'label,run,seed\nVGG_08,configs/VGG_08_seed0,0\nVGG_38,configs/VGG_38_seed0,0\n' |
  cmp - "$runs/depth/plan.csv" || fail "plan.csv: $(cat "$runs/depth/plan.csv")"
[ "$(grep -c ': done in' "$tmp/s1.err")" = 2 ] || fail "expected two 'done' lines: $(cat "$tmp/s1.err")"
ok "sweep depth: VGG_08 and VGG_38 complete in configs/, linked and listed in depth/"

# ---------------------------------------------------------------- skipping complete runs
before=$(stamps)
"$study" sweep depth "${budget[@]}" >/dev/null 2>"$tmp/s2.err" || fail "second sweep exited $?"
[ "$(grep -c 'complete, skipped' "$tmp/s2.err")" = 2 ] || fail "second sweep did not skip both: $(cat "$tmp/s2.err")"
grep -q 'starting\|resuming' "$tmp/s2.err" && fail "second sweep started a run: $(cat "$tmp/s2.err")"
[ "$before" = "$(stamps)" ] || fail "second sweep changed files: $(diff <(echo "$before") <(stamps))"
ok "a second sweep skips both runs and changes no file"

# ---------------------------------------------------------------- resuming an interrupted run
# a run killed before its test evaluation: summary.csv and a checkpoint, no test_summary.csv
cp "$runs/configs/VGG_08_seed0/test_summary.csv" "$tmp/test_summary.csv"
rm "$runs/configs/VGG_08_seed0/test_summary.csv"
"$study" sweep depth "${budget[@]}" >/dev/null 2>"$tmp/s3.err" || { cat "$tmp/s3.err" >&2; fail "resuming sweep exited $?"; }
grep -q 'VGG_08_seed0: resuming' "$tmp/s3.err" || fail "the interrupted run was not resumed: $(cat "$tmp/s3.err")"
cmp "$tmp/test_summary.csv" "$runs/configs/VGG_08_seed0/test_summary.csv" ||
  fail "the resumed run's test numbers differ"
ok "an interrupted run (no test_summary.csv) is resumed and ends with the same test numbers"

# ---------------------------------------------------------------- another budget is refused
before=$(stamps)
st=0; "$study" sweep depth --epochs 2 --train-limit 40 --num-filters 4 --threads 1 --data-dir "$data" \
  --runs-dir "$runs" >/dev/null 2>"$tmp/err" || st=$?
{ [ $st = 1 ] && grep -q 'was made with --epochs 1, this sweep gives --epochs 2' "$tmp/err"; } || fail "a sweep with --epochs 2 over 1-epoch runs: status $st, $(cat "$tmp/err")"
[ "$before" = "$(stamps)" ] || fail "the refused sweep changed files"
ok "a sweep with another budget over existing runs is refused (exit 1) and changes nothing"

# ---------------------------------------------------------------- all: each configuration once
"$study" sweep all "${budget[@]}" --dry-run >"$tmp/all.out" 2>"$tmp/all.err" || fail "sweep all --dry-run exited $?"
[ "$(wc -l <"$tmp/all.out")" = 10 ] || fail "sweep all would run $(wc -l <"$tmp/all.out") commands, expected 10 (12 configurations, 2 complete): $(cat "$tmp/all.out")"
[ "$(grep -c 'would be skipped' "$tmp/all.err")" = 2 ] || fail "sweep all --dry-run: $(cat "$tmp/all.err")"
[ "$(sort "$tmp/all.out" | uniq | wc -l)" = 10 ] || fail "sweep all repeats a configuration"
grep -q -- '--bn after --weight-decay 0.001 --dropout 0 --batch-size 80 --seed 0 --experiment-dir [^ ]*/configs/VGG_38_bn-after_wd0.001_bs80_seed0' "$tmp/all.out" ||
  fail "sweep all lacks Table 5's decay 0.001 / batch 80 run: $(cat "$tmp/all.out")"
[ -e "$runs/bn" ] && fail "--dry-run wrote a plan folder"
ok "sweep all --dry-run: 12 configurations once each, the 2 complete ones skipped, nothing written"

# ---------------------------------------------------------------- failing children
st=0; "$study" sweep bn-placement --dataset cifar100 --data-dir "$data" --epochs 1 --jobs 2 --threads 2 \
  --runs-dir "$tmp/bad" >/dev/null 2>"$tmp/err" || st=$?
[ $st = 1 ] || fail "a sweep whose runs fail exited $st, expected 1: $(cat "$tmp/err")"
[ "$(grep -c 'FAILED with exit status 1' "$tmp/err")" = 2 ] || fail "expected two FAILED lines: $(cat "$tmp/err")"
grep -q 'cifar' "$tmp/bad/configs/VGG_38_bn-before_seed0/train.log" || fail "the child's error is not in its train.log"
"$study" sweep bn --jobs 2 --threads 5 --runs-dir "$tmp/bad" --dry-run 2>/dev/null | grep -c -- '--threads 2$' |
  grep -qx 2 || fail "with --jobs 2 --threads 5 each run should get --threads 2"
ok "children that fail (no CIFAR files) are reported one line each; the sweep exits 1"

# ---------------------------------------------------------------- a Slurm job array
sl=$tmp/slurm
"$study" sweep bn-placement --epochs 1 --train-limit 40 --num-filters 4 --data-dir "$data" --runs-dir "$sl/runs" \
  --emit-slurm "$sl/job.sh" --ranks 2 --threads 1 >/dev/null 2>"$tmp/err" || fail "--emit-slurm exited $?: $(cat "$tmp/err")"
bash -n "$sl/job.sh" || fail "the sbatch script is not valid bash"
grep -qx '#SBATCH --array=0-1' "$sl/job.sh" && grep -qx '#SBATCH --ntasks=2' "$sl/job.sh" ||
  fail "the script's array or task count: $(grep SBATCH "$sl/job.sh")"
[ -s "$sl/runs/bn-placement/plan.csv" ] || fail "--emit-slurm did not write the plan folder"
[ -e "$sl/runs/configs" ] && fail "--emit-slurm trained or made run directories"
# each array task runs its own configuration through srun (a stand-in that prints its arguments)
mkdir -p "$sl/bin" && printf '#!/bin/sh\necho "$@"\n' >"$sl/bin/srun" && chmod +x "$sl/bin/srun"
out=$(SLURM_ARRAY_TASK_ID=1 PATH="$sl/bin:$PATH" bash "$sl/job.sh") || fail "array task 1 failed"
echo "$out" | grep -q -- "train .*--bn after .*--experiment-dir $sl/runs/configs/VGG_38_bn-after_seed0 --threads 1\$" ||
  fail "array task 1 ran: $out"
mkdir -p "$sl/runs/configs/VGG_38_bn-before_seed0" && : >"$sl/runs/configs/VGG_38_bn-before_seed0/summary.csv"
SLURM_ARRAY_TASK_ID=0 PATH="$sl/bin:$PATH" bash "$sl/job.sh" | grep -q -- '--resume$' || fail "an interrupted run's task does not resume"
st=0; "$study" sweep batch-size --runs-dir "$sl/runs2" --emit-slurm "$sl/job2.sh" --ranks 3 >/dev/null 2>"$tmp/err" || st=$?
[ $st = 2 ] && grep -q 'does not split into 3 equal shares' "$tmp/err" || fail "--ranks 3 with batch 100: $st $(cat "$tmp/err")"
[ -e "$sl/job2.sh" ] || [ -e "$sl/runs2/batch-size" ] && fail "a refused --emit-slurm wrote its script or plan folder"
ok "--emit-slurm writes an sbatch array (one task a run, srun over --ranks, resume decided at start)"

# ---------------------------------------------------------------- the report
"$study" report "$runs/depth" >/dev/null 2>"$tmp/r.err" || { cat "$tmp/r.err" >&2; fail "report exited $?"; }
md=$runs/REPORT.md
[ -s "$md" ] || fail "no REPORT.md beside the runs"
# a table cell: column k (1 = configuration) of the row whose first cell is $2
cell() { awk -F'|' -v name="$2" -v k="$3" '{ c = $2; gsub(/^ +| +$/, "", c) } c == name { v = $(k + 1); gsub(/^ +| +$|%/, "", v); print v; exit }' "$1"; }
for r in VGG_08 VGG_38; do
  dir=$runs/configs/${r}_seed0
  # columns: configuration, seeds, epochs, train acc, val acc, test acc, train loss, val loss, test loss
  [ "$(cell "$md" $r 3)" = 1 ] || fail "$r: epochs $(cell "$md" $r 3)"
  for spec in "4 summary.csv train_acc 100 1" "5 summary.csv val_acc 100 1" "6 test_summary.csv test_acc 100 1" \
              "7 summary.csv train_loss 1 3" "8 summary.csv val_loss 1 3" "9 test_summary.csv test_loss 1 3"; do
    read -r col file name scale digits <<<"$spec"
    want=$(awk -v v="$(last "$dir/$file" "$name")" -v s="$scale" -v d="$digits" 'BEGIN { printf "%.*f", d, v * s }')
    got=$(cell "$md" $r "$col")
    [ "$got" = "$want" ] || fail "$r $name in REPORT.md is '$got', the CSV gives $want"
  done
  grep -q "^- \*\*$r\*\*: seed 0, epoch 1: input_conv_conv_0 .* / reduction_block_2_conv_1 .*: \(vanishing\|flowing\)$" "$md" ||
    fail "no gradient-flow verdict for $r: $(grep -F "**$r**" "$md")"
done
grep -q '| VGG_38 | section 5.1 | — | — | 1.0% | — | — | 4.609 |' "$md" || fail "the report's VGG_38 numbers are missing"
[ -z "$(find "$runs" -name '*.tmp')" ] || fail "temporary files left: $(find "$runs" -name '*.tmp')"
if [ $have_gnuplot = 1 ]; then
  [ -s "$runs/depth_compare.png" ] || fail "no comparison plot depth_compare.png"
  grep -q '](depth_compare.png)' "$md" || fail "REPORT.md does not embed depth_compare.png"
  grep -q '](configs/VGG_38_seed0/gradflow.png)' "$md" || fail "REPORT.md does not embed VGG_38's gradflow.png"
fi
ok "report: REPORT.md's table equals the CSV files, with the report's numbers and verdicts"

# the runs directory itself reports every plan folder in it
"$study" report "$runs" >/dev/null 2>"$tmp/err" || fail "report of the runs directory exited $?"
[ "$(grep -c '^## [a-z-]*: ' "$md")" = 1 ] || fail "report of the runs directory: $(grep '^## ' "$md")"
ok "report of the runs directory covers the plan folders in it"

# ---------------------------------------------------------------- usage errors, --help
usage_error() {
  st=0; "$study" "$@" >/dev/null 2>"$tmp/err" </dev/null || st=$?
  [ $st = 2 ] || fail "'study $*' exited $st, expected 2: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" = 1 ] || fail "'study $*' printed $(wc -l <"$tmp/err") lines: $(cat "$tmp/err")"
}
usage_error sweep nonsense --runs-dir "$tmp/never"
usage_error sweep --runs-dir "$tmp/never"
usage_error sweep depth --jobs 0 --runs-dir "$tmp/never"
usage_error sweep depth --seeds 1,x --runs-dir "$tmp/never"
usage_error sweep depth --frobnicate --runs-dir "$tmp/never"
usage_error report
usage_error report "$tmp/nowhere"
usage_error report "$data"
usage_error report --frobnicate
"$study" sweep nonsense 2>"$tmp/err" || true
grep -q "unknown plan 'nonsense'" "$tmp/err" || fail "no message for an unknown plan: $(cat "$tmp/err")"
[ -e "$tmp/never" ] && fail "a usage error created the runs directory"
"$study" sweep --help | grep -q 'bn-placement' || fail "sweep --help does not list the plans"
"$study" report --help >/dev/null || fail "report --help exited $?"
ok "bad plans and flags exit 2 with one line; --help exits 0"
