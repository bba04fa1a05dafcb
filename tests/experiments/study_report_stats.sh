#!/usr/bin/env bash
# tests/experiments/study_report_stats.sh STUDY — `study report`'s statistics on crafted runs.
#
# Writes a runs directory by hand (plan.csv files and each run's config.txt, summary.csv,
# test_summary.csv and gradflow.csv, no training), with test accuracies chosen so that
# the means, standard deviations, Welch's t, its degrees of freedom and p are known in
# closed form, then checks REPORT.md's tables, the verdicts (reproduced, contradicted,
# not distinguishable), the seeds-needed column, results.csv, and that runs of two
# budgets are refused. Prints one line a check; exits non-zero at the first failure.
set -euo pipefail

study=${1:?usage: study_report_stats.sh PATH/TO/study}
tmp=$(mktemp -d)
trap 'if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

runs=$tmp/runs
# run NAME SEED TEST_ACC [EPOCHS]: a complete run with one epoch (train/val numbers
# derived from the test accuracy) and two conv rows of gradient flow
run() {
  local d=$runs/configs/$1 seed=$2 acc=$3 epochs=${4:-5}
  mkdir -p "$d"
  printf -- '--dataset fashion-mnist\n--num-filters 32\n--epochs %s\n--train-limit 10000\n--seed %s\n--bn after\n' \
    "$epochs" "$seed" >"$d/config.txt"
  printf 'epoch,train_acc,train_loss,val_acc,val_loss,lr,seconds\n' >"$d/summary.csv"
  for e in $(seq 1 "$epochs"); do
    printf '%s,%s,1.0,%s,1.5,0.001,1\n' "$e" "$acc" "$acc" >>"$d/summary.csv"
  done
  printf 'test_acc,test_loss\n%s,0.9\n' "$acc" >"$d/test_summary.csv"
  printf 'epoch,layer,kind,mean_abs,rms,max_abs,zero_frac\n%s,input_conv_conv_0,weight,0.001,0.002,0.01,0\n%s,reduction_block_2_conv_1,weight,0.01,0.02,0.1,0\n' \
    "$epochs" "$epochs" >"$d/gradflow.csv"
}
# plan NAME "LABEL:CONFIG" ...: plan.csv with seeds 0, 1, 2 of each configuration
plan() {
  local p=$1; shift
  mkdir -p "$runs/$p"
  printf 'label,run,seed\n' >"$runs/$p/plan.csv"
  for m in "$@"; do
    for s in 0 1 2; do printf '%s,configs/%s_seed%s,%s\n' "${m%%:*}" "${m##*:}" "$s" "$s" >>"$runs/$p/plan.csv"; done
  done
}
# three seeds of a configuration
seeds() { run "$1_seed0" 0 "$2"; run "$1_seed1" 1 "$3"; run "$1_seed2" 2 "$4"; }

# bn-placement: before {50, 52, 54} (mean 52, sd 2), after {60, 61, 62} (mean 61, sd 1):
#   diff +9, se sqrt(4/3 + 1/3), t = 6.97, df = 50/17 = 2.94; the report: after > before
seeds VGG_38_bn-before 0.50 0.52 0.54
seeds VGG_38_bn-after 0.60 0.61 0.62
# weight-decay (baseline: the bn-after runs): 0.001 {55, 63, 65} (mean 61, sd 5.29): diff 0,
#   t = 0, p = 1, not distinguishable; 0.005 {70, 71, 72}: diff +10 with sds 1 and 1,
#   t = 10 / sqrt(2/3) = 12.25 on df 4, against the report's -8.9: contradicted
seeds VGG_38_bn-after_wd0.001 0.55 0.63 0.65
seeds VGG_38_bn-after_wd0.005 0.70 0.71 0.72
plan bn-placement "BN before ReLU:VGG_38_bn-before" "BN after ReLU:VGG_38_bn-after"
plan weight-decay "decay coefficient=0:VGG_38_bn-after" "decay coefficient=0.001:VGG_38_bn-after_wd0.001" \
  "decay coefficient=0.005:VGG_38_bn-after_wd0.005"

"$study" report "$runs" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; fail "report exited $?"; }
md=$runs/REPORT.md
row() { grep -F "$1" "$md" | grep -F "$2" | head -1; }
# column k (1-based, after the leading '|') of a table row, trimmed
col() { awk -F'|' -v k="$2" '{ v = $(k + 1); gsub(/^ +| +$/, "", v); print v }' <<<"$1"; }

# the tables: mean ± sd over the three seeds, and each seed's value
r=$(grep -F '| BN after ReLU | 0, 1, 2 | 5 |' "$md") || fail "no BN after row: $(grep -F 'BN after' "$md")"
[ "$(col "$r" 6)" = "61.0 ± 1.0%" ] || fail "BN after test acc: '$(col "$r" 6)'"
[ "$(col "$r" 10)" = "51.9%" ] || fail "the report's test accuracy beside ours: '$(col "$r" 10)'"
r=$(grep -F '| decay coefficient=0.001 | 0, 1, 2 |' "$md") || fail "no decay 0.001 row"
[ "$(col "$r" 6)" = "61.0 ± 5.3%" ] || fail "decay 0.001 test acc: '$(col "$r" 6)'"
grep -qF 'BN before ReLU: seed 0 50.00%, seed 1 52.00%, seed 2 54.00%' "$md" || fail "per-seed values missing"
ok "tables: mean ± sample std over seeds, each seed's value, the report's number beside ours"

# comparisons, in the findings table (with the plan) and in each plan's section
r=$(row '| bn-placement | BN after ReLU vs BN before ReLU |' '')
[ -n "$r" ] || fail "no bn-placement comparison in the findings: $(grep -F 'vs' "$md" | head -3)"
[ "$(col "$r" 3)" = "+4.5" ] || fail "report diff: '$(col "$r" 3)'"
[ "$(col "$r" 4)" = "+9.00" ] || fail "our diff: '$(col "$r" 4)'"
[ "$(col "$r" 5)" = "3 / 3" ] || fail "seeds: '$(col "$r" 5)'"
[ "$(col "$r" 6)" = "$(awk 'BEGIN { printf "%.2f", 9 / sqrt(5 / 3) }')" ] || fail "t: '$(col "$r" 6)'"
[ "$(col "$r" 7)" = "2.9" ] || fail "df: '$(col "$r" 7)' (50/17)"
p=$(col "$r" 8)
awk -v p="$p" 'BEGIN { exit !(p > 0.003 && p < 0.02) }' || fail "p = $p, expected between df 3's 0.0061 and df 2's 0.020"
[ "$(col "$r" 9)" = "**reproduced**" ] || fail "verdict: '$(col "$r" 9)'"

r=$(row '| weight-decay | decay coefficient=0.001 vs decay coefficient=0 |' '')
[ "$(col "$r" 4)" = "+0.00" ] || fail "decay 0.001 diff: '$(col "$r" 4)'"
[ "$(col "$r" 6)" = "0.00" ] || fail "decay 0.001 t: '$(col "$r" 6)'"
[ "$(col "$r" 8)" = "1.000" ] || fail "decay 0.001 p: '$(col "$r" 8)'"
[ "$(col "$r" 9)" = "**not distinguishable from noise**" ] || fail "decay 0.001 verdict: '$(col "$r" 9)'"
# seeds to find the report's +0.8 with sds 1 and 5.29: ceil(7.849 (1 + 28) / 0.64) = 356
want=$(awk 'BEGIN { z = 1.959963984540054 + 0.8416212335729143; n = z * z * (1 + 28) / (0.8 * 0.8);
                    printf "%d", (n == int(n)) ? n : int(n) + 1 }')
[ "$(col "$r" 10)" = "$want" ] || fail "seeds needed: '$(col "$r" 10)', expected $want"

r=$(row '| weight-decay | decay coefficient=0.005 vs decay coefficient=0 |' '')
t=$(awk 'BEGIN { printf "%.2f", 10 / sqrt(2 / 3) }')
[ "$(col "$r" 3)" = "-8.9" ] && [ "$(col "$r" 4)" = "+10.00" ] && [ "$(col "$r" 6)" = "$t" ] &&
  [ "$(col "$r" 7)" = "4.0" ] || fail "decay 0.005: '$r'"
# p at df 4 in closed form: 1 - (3/4) x (1 - t^2 / (12 (1 + t^2/4))), x = t / sqrt(1 + t^2/4)
want=$(awk 'BEGIN { t = 10 / sqrt(2 / 3); q = 1 + t * t / 4; x = t / sqrt(q);
                    printf "%.1e", 1 - 0.75 * x * (1 - t * t / (12 * q)) }')
[ "$(col "$r" 8)" = "$want" ] || fail "decay 0.005 p: '$(col "$r" 8)', closed form $want"
[ "$(col "$r" 9)" = "**contradicted**" ] || fail "decay 0.005 verdict: '$(col "$r" 9)'"
grep -qF 'Of 3 comparisons, 1 reproduced, 1 contradicted and 1 not distinguishable from noise' "$md" ||
  fail "the findings' summary: $(grep -F 'Of 3' "$md")"
grep -qF '| BN after ReLU vs BN before ReLU | +4.5 | +9.00 |' "$md" || fail "the plan section lacks its comparison"
ok "comparisons: difference, Welch's t, df, p and verdicts as computed by hand; seeds needed"

# results.csv: one row a run per plan, the numbers as in the CSV files
[ "$(wc -l <"$runs/results.csv")" = 16 ] || fail "results.csv has $(wc -l <"$runs/results.csv") lines, expected 1 + 15"
grep -qx 'weight-decay,decay coefficient=0.005,configs/VGG_38_bn-after_wd0.005_seed1,1,1,5,0.71,0.71,0.71,1,1.5,0.9,0.001,0.01' \
  "$runs/results.csv" || fail "results.csv row: $(grep wd0.005_seed1 "$runs/results.csv")"
ok "results.csv holds every run's numbers"

# scripts/publish-results: the CSV files and the report, no checkpoints, no run plots
: >"$runs/configs/VGG_38_bn-after_seed0/checkpoint_best.safetensors"
: >"$runs/configs/VGG_38_bn-after_seed0/curves.png"
mkdir -p "$runs/configs/VGG_38_still_training_seed0" && cp "$runs/configs/VGG_38_bn-after_seed0/summary.csv" "$runs/configs/VGG_38_still_training_seed0/"
pub=$tmp/published
"$(dirname "$0")/../../scripts/publish-results" "$runs" "$pub" "$study" 2>"$tmp/err" ||
  fail "publish-results exited $?: $(cat "$tmp/err")"
[ "$(find "$pub/configs" -type f | wc -l)" = 48 ] || fail "published $(find "$pub/configs" -type f | wc -l) run files, expected 12 runs x 4"
[ -z "$(find "$pub" -name '*.safetensors' -o -name 'curves.png' -o -name '*.tmp')" ] || fail "published a checkpoint, run plot or temporary file"
[ -e "$pub/configs/VGG_38_still_training_seed0" ] && fail "published a run that is still training"
cmp -s "$pub/weight-decay/plan.csv" "$runs/weight-decay/plan.csv" || fail "plan.csv not published"
grep -qF '| weight-decay | decay coefficient=0.005 vs decay coefficient=0 | -8.9 | +10.00 |' "$pub/REPORT.md" ||
  fail "the published report differs"
grep -q 'configs/.*/curves.png' "$pub/REPORT.md" && fail "the published report embeds run plots it does not have"
ok "scripts/publish-results copies the CSV files and writes the report without checkpoints or run plots"

# the data recipe is stated
grep -q 'padded to 32x32 with black (0) pixels' "$md" || fail "no data recipe"
ok "the report states the data recipe"

# one seed a side: no test, no verdict
printf 'label,run,seed\nBN before ReLU,configs/VGG_38_bn-before_seed0,0\nBN after ReLU,configs/VGG_38_bn-after_seed0,0\n' \
  >"$runs/bn-placement/plan.csv"
"$study" report "$runs/bn-placement" >/dev/null 2>"$tmp/err" || fail "report of one seed exited $?"
grep -qF '| BN after ReLU vs BN before ReLU | +4.5 | +10.00 | 1 / 1 | — | — | — | **not tested (fewer than 2 seeds a side)** |' "$md" ||
  fail "one seed: $(grep -F 'vs BN before' "$md")"
ok "with one seed a side the comparison is shown untested"

# runs of two budgets in one report are refused, and REPORT.md is left as it was
cp "$md" "$tmp/before.md"
run VGG_38_bn-after_seed0 0 0.60 3
st=0; "$study" report "$runs" >/dev/null 2>"$tmp/err" || st=$?
[ $st = 1 ] || fail "a report over two budgets exited $st: $(cat "$tmp/err")"
grep -q "were made with different budgets or data ('--epochs 5' against '--epochs 3')" "$tmp/err" ||
  fail "the refusal does not name the difference: $(cat "$tmp/err")"
grep -q 'VGG_38_bn-after_seed0/config.txt' "$tmp/err" || fail "the refusal does not name the run: $(cat "$tmp/err")"
cmp -s "$md" "$tmp/before.md" || fail "the refused report changed REPORT.md"
ok "runs of different budgets are refused with the flag that differs; REPORT.md untouched"
