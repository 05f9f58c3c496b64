#!/bin/bash
# bench/pop3_bench.sh - POP3 read benchmark, Tern against Debian's Dovecot on
# this machine, with the shared kit's client (../shared/bench/pop3_bench.py:
# login, STAT, UIDL, LIST, RETR of every message, QUIT without DELE) on the
# kit's mailbox: ~benchuser/Maildir with IMAP_MSGS (5000) messages of ~5.5 kB.
#
#   sudo bench/pop3_bench.sh                 # RUNS=3 interleaved rounds
#   RUNS=5 CLIENTS=8 sudo -E bench/pop3_bench.sh
#   FILL=tern sudo -E bench/pop3_bench.sh    # mailbox filled through Tern
#
# Phases, each run once per server per round, Dovecot and Tern alternating:
#   pop3_cold_1client   the Maildir as right after delivery (cur/ moved back
#                       to new/, Dovecot's index files and Tern's
#                       tern-index.lmdb removed): the server lists, indexes
#                       and (without ,W= in the names) reads every message
#                       once for its CRLF size; SKIP_COLD=1 skips it
#   pop3_warm_1client   indexes from the earlier runs
#   pop3_warm_Nclients  N = CLIENTS (8) sessions at once, each of its own
#                       user (benchuser, pop3bench2 .. pop3benchN, each
#                       Maildir a copy of benchuser's; bench/pop3_multi.py):
#                       Tern refuses a second session on a locked mailbox
#                       ([IN-USE]), so the kit's N sessions of one user
#                       cannot be its shape. (The kit's run_imap_bench.sh
#                       measures Dovecot with N sessions of one user.)
# Servers: Dovecot through the kit's mta_dovecot.sh (127.0.0.1:$POP3_PORT,
# 10110); Tern from this tree's build/ as a separate instance in $TERN_DIR
# (/var/lib/tern-bench-pop3, made with scripts/mkinstance.py: pop3-login,
# pop3d, auth; system users; plaintext USER/PASS allowed on loopback, as the
# kit's Dovecot does) on 127.0.0.1:$TERN_POP3_PORT (2530), under the kit's
# reaper so the server CPU of its whole process tree is measured.
# The mailbox: when it does not hold exactly IMAP_MSGS messages it is
# emptied and refilled, through the kit's Postfix instance as the kit's
# run_imap_bench.sh does (file names without sizes), or with FILL=tern
# through this Tern instance's SMTP port $TERN_SMTP_PORT (2531; names with
# ,S= and ,W=, which Dovecot reads too).
# Results: $RESULTS_DIR/pop3_dovecot.jsonl and pop3_tern.jsonl (one JSON line
# per run, the kit's format), then medians per phase side by side with the
# Tern/Dovecot ratio. Needs root (both servers drop privileges as in
# production; the kit creates benchuser) and the whole machine: run it only
# when nothing else runs. It builds nothing: `make build` first.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/pop3_bench.sh: must run as root" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
[ -x "$KIT/pop3_bench.py" ] && [ -f "$KIT/common.sh" ] ||
    { echo "bench/pop3_bench.sh: no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }
. "$KIT/common.sh"

RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-8}
IMAP_MSGS=${IMAP_MSGS:-5000}
FILL=${FILL:-postfix}
TERN_BUILD=${TERN_BUILD:-$ROOT/build}
TERN_DIR=${TERN_DIR:-/var/lib/tern-bench-pop3}
TERN_POP3_PORT=${TERN_POP3_PORT:-2530}
TERN_SMTP_PORT=${TERN_SMTP_PORT:-2531}
OUT_DOVECOT=$RESULTS_DIR/pop3_dovecot.jsonl
OUT_TERN=$RESULTS_DIR/pop3_tern.jsonl

for p in master pop3-login pop3d auth; do
    [ -x "$TERN_BUILD/libexec/$p" ] || die "no $TERN_BUILD/libexec/$p: run make build first"
done

ensure_user
MD=$(user_home)/Maildir

count_msgs() {  # [MAILDIR]
    local md=${1:-$MD}
    echo $(( $(ls -U "$md/new" | wc -l) + $(ls -U "$md/cur" | wc -l) ))
}
extra_users() { local i; for i in $(seq 2 "$CLIENTS"); do echo "pop3bench$i"; done; }

reset_maildir() {
    # the state right after delivery: everything in new/, no server's index
    "$PY" - "$MD" <<'EOF'
import os, sys
md = sys.argv[1]
for f in os.listdir(os.path.join(md, "cur")):
    os.rename(os.path.join(md, "cur", f), os.path.join(md, "new", f.split(":2,")[0]))
for f in os.listdir(md):
    if (f.startswith("dovecot") or f.startswith("tern-index.lmdb")
            or f in ("subscriptions", "maildirfolder", "tern-pop3.lock")):
        p = os.path.join(md, f)
        if os.path.isfile(p):
            os.unlink(p)
EOF
    sync
}

tern_setup() {
    "$PY" - "$ROOT/scripts" "$TERN_DIR" "$TERN_BUILD" "$TERN_POP3_PORT" "$TERN_SMTP_PORT" "$BENCH_USER" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import mkinstance
d, build, pop3, smtp, user = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
mkinstance.create(
    d, build, {"pop3": pop3, "smtp": smtp},
    main_extra={
        # system users (benchuser, password from chpasswd), like the kit
        "virtual_user_maps": "",
        "virtual_password_maps": "",
        "alias_maps": "",
        "myhostname": "bench.localhost",
        "mydestination": "localhost, localhost.localdomain, bench.localhost",
        # loopback only, no TLS: plaintext USER/PASS as the kit's Dovecot
        "pop3d_tls_security_level": "none",
        "pop3d_tls_auth_only": "no",
        # the client logs in once per run, and fails loudly if refused
        "pop3d_auth_failure_delay": "0s",
    },
    aliases={"postmaster": user, "root": user, "mailer-daemon": user},
    hostname="bench.localhost")
EOF
    "$TERN_BUILD/libexec/master" -t -c "$TERN_DIR/etc" || die "tern master -t: configuration check failed"
}

tern_start() {
    local r; r=$(reaper_pid tern-pop3 || true)
    if [ -n "$r" ] && kill -0 "$r" 2>/dev/null; then return 0; fi
    port_in_use "$TERN_POP3_PORT" && die "port $TERN_POP3_PORT in use"
    reaper_start tern-pop3 "$TERN_BUILD/libexec/master" -f -c "$TERN_DIR/etc"
    wait_port "$TERN_POP3_PORT" 20 || die "tern did not listen on $TERN_POP3_PORT (see $TERN_DIR/log/maillog)"
    log "tern-pop3 listening on 127.0.0.1:$TERN_POP3_PORT (reaper $(reaper_pid tern-pop3))"
}

tern_stop() {
    local r m
    r=$(reaper_pid tern-pop3 || true)
    [ -n "$r" ] && kill -0 "$r" 2>/dev/null || return 0
    m=$(pgrep -P "$r" -x master | head -1 || true)
    [ -n "$m" ] && kill -TERM "$m" 2>/dev/null || true
    wait_pid_gone "$r" 30 || log "tern-pop3 reaper $r still running after 30 s"
}

populate() {
    reset_maildir
    find "$MD/new" -mindepth 1 -delete
    if [ "$FILL" = tern ]; then
        log "filling $MD with $IMAP_MSGS messages through Tern (127.0.0.1:$TERN_SMTP_PORT)"
        MSGS=$IMAP_MSGS RUNS=1 SETTLE=1 SMTP_PORT=$TERN_SMTP_PORT LABEL=populate \
            SERVER_PID=$(reaper_pid tern-pop3) "$BENCH_DIR/smtp_load.sh" >/dev/null
    else
        log "filling $MD with $IMAP_MSGS messages through the kit's Postfix instance"
        "$BENCH_DIR/mta_postfix.sh" start
        MSGS=$IMAP_MSGS RUNS=1 SETTLE=1 SMTP_PORT=$POSTFIX_PORT LABEL=populate \
            SERVER_PID=$("$BENCH_DIR/mta_postfix.sh" pid) "$BENCH_DIR/smtp_load.sh" >/dev/null
        "$BENCH_DIR/mta_postfix.sh" stop
    fi
    # delivery may still be finishing after smtp_load returns
    local i
    for i in $(seq 1 600); do
        [ "$(count_msgs)" -ge "$IMAP_MSGS" ] && break
        sleep 0.5
    done
}

# copies of benchuser's mailbox for the other clients of the N-client phase
ensure_copies() {
    local u g home md
    for u in $(extra_users); do
        getent passwd "$u" >/dev/null || useradd -m -s /bin/sh "$u"
        echo "$u:$BENCH_PASS" | chpasswd
        g=$(id -gn "$u")
        home=$(getent passwd "$u" | cut -d: -f6)
        md=$home/Maildir
        install -d -o "$u" -g "$g" -m 700 "$md" "$md/new" "$md/cur" "$md/tmp"
        [ "$(count_msgs "$md")" = "$IMAP_MSGS" ] && continue
        log "copying $MD to $md"
        find "$md" -mindepth 1 -maxdepth 1 -type f -delete
        find "$md/new" "$md/cur" -mindepth 1 -delete
        find "$MD/new" -mindepth 1 -maxdepth 1 -type f -exec cp -p -t "$md/new/" {} +
        find "$MD/cur" -mindepth 1 -maxdepth 1 -type f -exec cp -p -t "$md/cur/" {} +
        chown -R "$u:$g" "$md"
        [ "$(count_msgs "$md")" = "$IMAP_MSGS" ] || die "$md: $(count_msgs "$md") messages"
    done
}

server_port_pid() {  # server_port_pid SERVER -> "PORT PID"
    if [ "$1" = tern ]; then
        echo "$TERN_POP3_PORT $(reaper_pid tern-pop3)"
    else
        echo "$POP3_PORT $("$BENCH_DIR/mta_dovecot.sh" pid)"
    fi
}

record() {  # record SERVER LABEL LINE
    local out=$OUT_DOVECOT
    [ "$1" = tern ] && out=$OUT_TERN
    [ -n "$3" ] || { log "$1 $2: FAILED"; return 0; }
    echo "$3" >> "$out"
    log "$1: $3"
}

# run_multi SERVER N LABEL: N users at once, one session each
run_multi() {
    local server=$1 n=$2 label=$3 port pid line
    read -r port pid < <(server_port_pid "$server")
    # shellcheck disable=SC2046
    line=$(timeout 1800 "$PY" "$ROOT/bench/pop3_multi.py" --kit "$BENCH_DIR" --port "$port" \
        --server-pid "$pid" --label "$label" --password "$BENCH_PASS" \
        "$BENCH_USER" $(extra_users | head -n $((n - 1)))) || true
    record "$server" "$label" "$line"
}

run() {  # run SERVER CLIENTS LABEL: the kit's client as the kit runs it
    local server=$1 n=$2 label=$3 port pid line
    read -r port pid < <(server_port_pid "$server")
    line=$(timeout 1800 "$PY" "$BENCH_DIR/pop3_bench.py" --port "$port" --user "$BENCH_USER" \
        --password "$BENCH_PASS" --clients "$n" --server-pid "$pid" --label "$label") || true
    record "$server" "$label" "$line"
}

# only the two servers measured here run
for m in postfix opensmtpd exim tern; do "$BENCH_DIR/mta_$m.sh" stop >/dev/null 2>&1 || true; done
cleanup() { tern_stop; "$BENCH_DIR/mta_dovecot.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
[ -f "$TERN_DIR/etc/main.conf" ] || tern_setup
tern_start
if [ "$(count_msgs)" != "$IMAP_MSGS" ]; then populate; fi
[ "$(count_msgs)" = "$IMAP_MSGS" ] || die "mailbox has $(count_msgs) messages, want $IMAP_MSGS"
ensure_copies
"$BENCH_DIR/mta_dovecot.sh" setup >/dev/null
# the kit's Dovecot knows only $BENCH_USER: give the other users of the
# N-client phase the same password there (its userdb is the system's)
dv_users=/etc/dovecot-bench/users
dv_hash=$(awk -F: -v u="$BENCH_USER" '$1 == u {print $2}' "$dv_users")
[ -n "$dv_hash" ] || die "no $BENCH_USER in $dv_users"
for u in $(extra_users); do
    grep -q "^$u:" "$dv_users" || printf '%s:%s\n' "$u" "$dv_hash" >> "$dv_users"
done
"$BENCH_DIR/mta_dovecot.sh" start

mark_d=$(wc -l < "$OUT_DOVECOT" 2>/dev/null || echo 0)
mark_t=$(wc -l < "$OUT_TERN" 2>/dev/null || echo 0)
log "pop3_bench: tern $(git rev-parse --short HEAD 2>/dev/null || echo '?'), RUNS=$RUNS CLIENTS=$CLIENTS, FILL=$FILL"

if [ -z "${SKIP_COLD:-}" ]; then
    for i in $(seq 1 "$RUNS"); do
        for s in dovecot tern; do reset_maildir; sleep 1; run "$s" 1 pop3_cold_1client; done
    done
fi
for s in dovecot tern; do run "$s" 1 warmup; run_multi "$s" "$CLIENTS" warmup; done
for i in $(seq 1 "$RUNS"); do
    for s in dovecot tern; do sleep 1; run "$s" 1 pop3_warm_1client; done
done
for i in $(seq 1 "$RUNS"); do
    for s in dovecot tern; do sleep 1; run_multi "$s" "$CLIENTS" "pop3_warm_${CLIENTS}clients"; done
done

# medians of this invocation per phase, side by side
"$PY" - "$OUT_DOVECOT" "$mark_d" "$OUT_TERN" "$mark_t" <<'EOF' | tee "$RESULTS_DIR/summary_pop3_tern_dovecot.txt"
import collections, json, statistics, sys

def load(path, skip):
    g = collections.OrderedDict()
    try:
        with open(path) as f:
            lines = f.readlines()[int(skip):]
    except FileNotFoundError:
        lines = []
    for l in lines:
        r = json.loads(l)
        if r["label"] != "warmup":
            g.setdefault(r["label"], []).append(r)
    return g

d, t = load(sys.argv[1], sys.argv[2]), load(sys.argv[3], sys.argv[4])
keys = ["wall_s", "login_s", "stat_s", "uidl_s", "list_s", "retr_all_s",
        "retr_msg_s", "retr_mb_s", "server_cpu_s", "client_cpu_s"]
for lab in list(dict.fromkeys(list(d) + list(t))):
    rd, rt = d.get(lab, []), t.get(lab, [])
    print("== %s (dovecot %d runs, tern %d runs)" % (lab, len(rd), len(rt)))
    print("  %-14s %12s %12s %10s" % ("median", "dovecot", "tern", "tern/dov"))
    for k in keys:
        vd = [r[k] for r in rd if isinstance(r.get(k), (int, float))]
        vt = [r[k] for r in rt if isinstance(r.get(k), (int, float))]
        md = statistics.median(vd) if vd else None
        mt = statistics.median(vt) if vt else None
        ratio = "%.2f" % (mt / md) if md and mt is not None else "-"
        print("  %-14s %12s %12s %10s" % (k, "-" if md is None else "%.4g" % md,
                                          "-" if mt is None else "%.4g" % mt, ratio))
    errs = [("dovecot", r["error"]) for r in rd if "error" in r] + \
           [("tern", r["error"]) for r in rt if "error" in r]
    for s, e in errs:
        print("  error (%s): %s" % (s, e))
EOF
