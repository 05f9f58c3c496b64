#!/bin/sh
# bench/run.sh - Tern against Debian's Postfix on this machine, the three
# SMTP load shapes of the shared benchmark kit (r1, r5, d), then the
# Tern/Postfix ratios per load (bench/ratios.py). `make bench` runs it
# after `make build`; it builds nothing itself.
#
#   sudo make bench                      # RUNS=3 interleaved rounds
#   RUNS=5 sudo -E bench/run.sh
#   BENCH_KIT=/path/to/bench RESULTS_DIR=/tmp/r sudo -E bench/run.sh
#
# Needs root (the kit runs both servers as root so that their daemons drop
# privileges as in production, and creates the benchmark users); exits 2
# otherwise. Installs what is missing: postfix (for smtp-source and the
# Postfix side, with debconf's "No configuration" as scripts/deps.sh
# does, so no system Postfix is configured or left running). The kit's
# own settings pass through the environment (MSGS, MSGS_R5, SESSIONS,
# VARIANTS, ...; see its README).
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: must run as root (the benchmark kit starts Postfix and Tern as root)" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
RUNS=${RUNS:-3}
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}/tern-bench-results}
TERN_DIR=${TERN_DIR:-/var/lib/tern-bench}
export RUNS RESULTS_DIR TERN_DIR

[ -x "$KIT/run_smtp_bench.sh" ] || { echo "bench/run.sh: no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }
[ -x "$ROOT/build/libexec/master" ] || { echo "bench/run.sh: no build/libexec/master: run make build first" >&2; exit 1; }

if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    echo "bench/run.sh: installing postfix (No configuration: smtp-source and the kit's own instance only)"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix || {
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix
    }
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now postfix >/dev/null 2>&1 || true
    fi
fi

# The kit's `mta_tern.sh qsize` counts files in spool/maildrop too, which
# Tern does not create (yet): without it find fails, the count is not a
# number, and the kit waits QUEUE_WAIT (120 s) before every run.
mkdir -p "$TERN_DIR/spool/maildrop"

echo "bench/run.sh: $(git rev-parse --short HEAD 2>/dev/null || echo '?') RUNS=$RUNS results in $RESULTS_DIR"
POSTFIX_PORT=3525 MTAS="postfix tern" RUNS=$RUNS "$KIT/run_smtp_bench.sh"
echo
python3 "$ROOT/bench/ratios.py" --dir "$RESULTS_DIR" --last "$RUNS"
