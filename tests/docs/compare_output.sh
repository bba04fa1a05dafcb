#!/bin/sh
# compare_output.sh EXE EXPECTED — runs a tutorial example and compares its output.
#
# EXE runs in a scratch folder (where it may write files, such as .dot drawings); it
# must exit 0, and its standard output must equal EXPECTED line for line. If EXPECTED
# begins with the line "# key lines", the rest of it is a list of lines that must
# appear in the output in that order, other lines allowed between them. If Graphviz's
# `dot` is installed, every .dot file the program wrote must render; without it that
# check is skipped, not failed.
#
# To regenerate an expected file after a deliberate change (then read the diff, and
# the chapter that quotes it):  (cd /tmp && /path/to/build/docs/tutorial/examples/ch1_tape) \
#                                 > docs/tutorial/examples/ch1_tape.expected
set -u
if [ $# -ne 2 ]; then
    echo "usage: compare_output.sh EXE EXPECTED" >&2
    exit 2
fi
case $1 in /*) exe=$1 ;; *) exe=$PWD/$1 ;; esac
expected=$2
[ -r "$expected" ] || { echo "compare_output: $expected: cannot read" >&2; exit 1; }

dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
out=$dir/stdout.txt

(cd "$dir" && "$exe" >"$out" 2>"$dir/stderr.txt")
status=$?
if [ $status -ne 0 ]; then
    echo "compare_output: $exe exited with status $status; its standard error:" >&2
    cat "$dir/stderr.txt" >&2
    exit 1
fi

if [ "$(head -n 1 "$expected")" = "# key lines" ]; then
    # each remaining line of EXPECTED must match a later output line than the last one did
    if ! awk 'NR == FNR { if (FNR > 1) want[++n] = $0; next }
              k < n && $0 == want[k + 1] { k++ }
              END { if (k < n) { printf "compare_output: expected line %d not found (in order):\n  %s\n", k + 1, want[k + 1]; exit 1 } }' \
         "$expected" "$out" >&2; then
        echo "compare_output: the output was:" >&2
        cat "$out" >&2
        exit 1
    fi
elif ! diff -u "$expected" "$out" >"$dir/diff.txt"; then
    echo "compare_output: the output of $exe differs from $expected (- expected, + output):" >&2
    cat "$dir/diff.txt" >&2
    exit 1
fi

if command -v dot >/dev/null 2>&1; then
    for f in "$dir"/*.dot; do
        [ -e "$f" ] || continue
        if ! dot -Tsvg "$f" -o /dev/null 2>"$dir/dot.txt"; then
            echo "compare_output: $(basename "$f") does not render:" >&2
            cat "$dir/dot.txt" >&2
            exit 1
        fi
    done
fi
exit 0
