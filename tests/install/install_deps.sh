#!/usr/bin/env bash
# scripts/install-deps, run against stand-ins for dpkg-query, id, sudo and apt-get (a
# folder put first on PATH), in the cases that matter on a fresh Debian 12 and on a
# machine without root:
#   everything installed                        -> exit 0, apt-get never runs
#   no root, no sudo, only optional ones missing -> exit 0, a note naming them
#   no root, no sudo, a required one missing    -> exit 1, naming it
#   root, both kinds missing, one optional not in the archive
#                                               -> exit 0, the rest installed, a note
#   root, a required one that cannot install     -> exit non-zero
#   sudo that asks a password, no terminal, only optional missing -> exit 0, no sudo run
#   root, libxsmm-dev missing: installed on amd64, not asked for on arm64
set -uo pipefail
script=$(cd "$(dirname "$0")/../.." && pwd)/scripts/install-deps
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_deps: $*" >&2; exit 1; }

bin=$tmp/bin
mkdir -p "$bin"
for tool in bash grep cat env; do ln -s "$(command -v $tool)" "$bin/$tool"; done
# dpkg-query -W -f=... PKG: installed unless PKG is in $MISSING (space-separated)
cat > "$bin/dpkg-query" <<'EOS'
#!/bin/bash
p=${!#}
case " $MISSING " in *" $p "*) exit 1 ;; esac
printf 'install ok installed'
EOS
# dpkg --print-architecture: $FAKE_ARCH
cat > "$bin/dpkg" <<'EOS'
#!/bin/bash
echo "$FAKE_ARCH"
EOS
cat > "$bin/id" <<'EOS'
#!/bin/bash
echo "$FAKE_UID"
EOS
# apt-get: logs its arguments; "install" fails for a package in $UNAVAILABLE
cat > "$bin/apt-get" <<'EOS'
#!/bin/bash
echo "apt-get $*" >> "$LOG"
[ "$1" = install ] || exit 0
for p in "$@"; do case " $UNAVAILABLE " in *" $p "*) exit 100 ;; esac; done
exit 0
EOS
# sudo: -n true succeeds only with $SUDO_NOPASSWD=1; otherwise runs the command
cat > "$bin/sudo-impl" <<'EOS'
#!/bin/bash
echo "sudo $*" >> "$LOG"
if [ "$1" = -n ]; then [ "${SUDO_NOPASSWD:-0}" = 1 ]; exit; fi
exec "$@"
EOS
chmod +x "$bin"/*

run() { # NAME: runs the script with the environment set by the caller; status in $st
  : > "$tmp/log"
  st=0
  env -i PATH="$bin" LOG="$tmp/log" MISSING="${MISSING:-}" UNAVAILABLE="${UNAVAILABLE:-}" \
      FAKE_UID="${FAKE_UID:-1000}" SUDO_NOPASSWD="${SUDO_NOPASSWD:-0}" FAKE_ARCH="${FAKE_ARCH:-amd64}" \
      "$(command -v bash)" "$script" </dev/null >"$tmp/out" 2>"$tmp/err" || st=$?
}
with_sudo() { ln -sf sudo-impl "$bin/sudo"; }
without_sudo() { rm -f "$bin/sudo"; }

without_sudo
MISSING="" run
[ $st -eq 0 ] || fail "all installed: exit $st"
[ ! -s "$tmp/log" ] || fail "all installed: ran $(cat "$tmp/log")"

MISSING="chromium doxygen" run
[ $st -eq 0 ] || fail "no sudo, optional missing: exit $st ($(cat "$tmp/err"))"
grep -q "not installed (optional; the build and tests go on without them): doxygen chromium" "$tmp/err" ||
  fail "no sudo, optional missing: no note: $(cat "$tmp/err")"
[ ! -s "$tmp/log" ] || fail "no sudo: ran $(cat "$tmp/log")"

MISSING="check chromium" run
[ $st -eq 1 ] || fail "no sudo, required missing: exit $st"
grep -q "need root or sudo to install the required packages: check$" "$tmp/err" ||
  fail "no sudo, required missing: $(cat "$tmp/err")"

FAKE_UID=0 MISSING="check chromium gnuplot-nox" UNAVAILABLE="chromium" run
[ $st -eq 0 ] || fail "root, chromium unavailable: exit $st ($(cat "$tmp/err"))"
grep -q "^apt-get install .* check$" "$tmp/log" || fail "root: check not installed: $(cat "$tmp/log")"
grep -q "^apt-get install .* gnuplot-nox$" "$tmp/log" || fail "root: gnuplot-nox not installed: $(cat "$tmp/log")"
grep -q "not installed (optional; .*): chromium$" "$tmp/err" || fail "root: no note for chromium: $(cat "$tmp/err")"

FAKE_UID=0 MISSING="check" UNAVAILABLE="check" run
[ $st -ne 0 ] || fail "root, a required package that cannot install: exit 0"

with_sudo
SUDO_NOPASSWD=0 MISSING="doxygen" run
[ $st -eq 0 ] || fail "sudo with a password, no terminal, optional missing: exit $st"
! grep -q "apt-get" "$tmp/log" || fail "sudo with a password: ran $(cat "$tmp/log")"

SUDO_NOPASSWD=1 MISSING="doxygen" run
[ $st -eq 0 ] || fail "sudo without a password: exit $st"
grep -q "^sudo apt-get install .* doxygen$" "$tmp/log" || fail "sudo without a password: $(cat "$tmp/log")"
without_sudo
FAKE_UID=0 FAKE_ARCH=amd64 MISSING="libxsmm-dev" run
[ $st -eq 0 ] || fail "root, amd64, libxsmm-dev missing: exit $st ($(cat "$tmp/err"))"
grep -q "^apt-get install .*libxsmm-dev" "$tmp/log" || fail "amd64: libxsmm-dev not installed: $(cat "$tmp/log")"

FAKE_UID=0 FAKE_ARCH=arm64 MISSING="libxsmm-dev" run
[ $st -eq 0 ] || fail "root, arm64: exit $st ($(cat "$tmp/err"))"
[ ! -s "$tmp/log" ] || fail "arm64: asked for libxsmm-dev, which Debian does not build there: $(cat "$tmp/log")"
echo "install_deps: 9 cases ok"
