#!/usr/bin/env python3
"""syscalls - the system call budget per message, by process name.

    bench/syscalls.py [--msgs 500] [--sessions 20] [--size 5120]
                      [--instance bench|ternlab] [--postfix] [--keep]
                      [--build DIR] [--top 8]

Starts a throw-away Tern instance (a temporary directory, SMTP on a free
loopback port) with its master under `strace -f -Y -o FILE`, sends
--msgs messages with Postfix's smtp-source in the shape of the kit's r1
load (one message per connection, --sessions at once, one local
recipient, --size byte bodies), waits until every one is in the
recipient's Maildir/new and the queue is empty, stops, and prints the
system calls per message of each process name (smtpd, qmgr, local,
master, proxymap, ...) with the top system calls of each.

Only the calls made while the load ran count: the trace file's length is
taken once the started instance has gone quiet and again once every
message is delivered and the instance is quiet again (start-up and
shutdown are left out; the idle wake-ups in between are counted, they
are what the system costs while it works). A call is a line
"PID<comm> name(" of the trace ("<... resumed>" halves are not counted
again; signals and exits are not calls).

--instance bench (the default as root): the kit's mta_tern.sh instance
(its main.conf deviations: system users only, no aliases,
myhostname bench.localhost), delivering to the system user $BENCH_USER
(default benchuser, created with a Maildir if missing: its local
delivery goes through getpwnam/NSS as in the benchmark). --instance
ternlab: a tests/integration/ternlab.py instance delivering to its
virtual user demo (no root needed, no NSS).

--postfix: the same for Postfix (Debian's package, master from
/usr/lib/postfix/sbin) in a throw-away instance of its own (a copy of
the kit's mta_postfix.sh main.cf shape in a temporary directory,
delivering to the same user), for comparison. Needs root.

strace slows every traced process down a great deal: the counts are
exact, the timings meaningless.
"""
import argparse
import collections
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

SMTP_SOURCE = "/usr/sbin/smtp-source"
CALL_RE = re.compile(rb"^(\d+)<([^>]*)> (?!<\.\.\.)([a-z_0-9]+)\(", re.M)


def die(msg):
    print("syscalls: " + msg, file=sys.stderr)
    sys.exit(1)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            die("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def wait_quiet(path, quiet=1.0, timeout=120):
    """Wait until the trace file has not grown for quiet seconds; its
    size then."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        s = os.path.getsize(path)
        if s != size:
            size, since = s, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return size
        time.sleep(0.1)
    return os.path.getsize(path)


def count_new(maildir):
    try:
        return len(os.listdir(os.path.join(maildir, "new")))
    except FileNotFoundError:
        return 0


def ensure_system_user(name):
    """A system user with ~/Maildir/{new,cur,tmp} (as the kit's
    ensure_user); returns its Maildir."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True)
        pw = pwd.getpwnam(name)
    md = os.path.join(pw.pw_dir, "Maildir")
    for sub in ("", "new", "cur", "tmp"):
        p = os.path.join(md, sub)
        os.makedirs(p, exist_ok=True)
        os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(p, 0o700)
    return md


class Traced:
    """A server's master under strace -f -Y -o trace."""

    def __init__(self, argv, trace, env=None):
        self.trace = trace
        self.out = open(trace + ".out", "wb")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-Y", "-qq", "-o", trace] + argv,
            stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def stop(self, term_pid=None):
        """SIGTERM the traced master (term_pid, else strace's child), wait
        for strace to end."""
        if self.proc.poll() is None:
            try:
                if term_pid:
                    os.kill(term_pid, signal.SIGTERM)
                else:
                    os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.out.close()


def traced_child(strace_pid):
    """The pid strace started (its first child)."""
    def kid():
        try:
            with open("/proc/%d/task/%d/children" % (strace_pid, strace_pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None
    return wait_for(kid, 30, "strace's child")


def port_open(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(10)
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


def load(port, rcpt, maildir, a, queue_empty):
    """smtp-source r1-style, then wait for every file and an empty queue"""
    before = count_new(maildir)
    cmd = [SMTP_SOURCE, "-s", str(a.sessions), "-m", str(a.msgs), "-l",
           str(a.size), "-f", "bench@localhost", "-t", rcpt,
           "127.0.0.1:%d" % port]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=a.timeout)
    err = r.stderr.decode(errors="replace").strip()
    if r.returncode != 0:
        die("smtp-source failed: %s" % err[-500:])
    if err:
        print("syscalls: smtp-source said: %s" % err[-500:], file=sys.stderr)
    wait_for(lambda: count_new(maildir) - before >= a.msgs, a.timeout,
             "%d messages in %s/new" % (a.msgs, maildir))
    wait_for(queue_empty, a.timeout, "an empty queue")
    got = count_new(maildir) - before
    if got != a.msgs:
        die("%d files delivered for %d messages (smtp-source sent more "
            "than -m? see its messages above)" % (got, a.msgs))


def count_calls(trace, start, end):
    """{comm: Counter(syscall)}, {comm: set(pids)} for trace[start:end]"""
    with open(trace, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    nl = data.find(b"\n")          # start may be mid-line: skip that one
    data = data[nl + 1:] if start and nl >= 0 else data
    calls = collections.defaultdict(collections.Counter)
    pids = collections.defaultdict(set)
    for m in CALL_RE.finditer(data):
        comm = m.group(2).decode(errors="replace")
        calls[comm][m.group(3).decode()] += 1
        pids[comm].add(int(m.group(1)))
    return calls, pids


def report(title, calls, pids, msgs, top):
    total = sum(sum(c.values()) for c in calls.values())
    print("== %s: %d messages, %d system calls, %.1f per message"
          % (title, msgs, total, total / msgs))
    print("%-16s %6s %10s %10s   top calls (per message)"
          % ("process", "pids", "calls", "per msg"))
    for comm, c in sorted(calls.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(c.values())
        tops = ", ".join("%s %.1f" % (name, k / msgs)
                         for name, k in c.most_common(top))
        print("%-16s %6d %10d %10.1f   %s"
              % (comm, len(pids[comm]), n, n / msgs, tops))
    print()


def run_tern(a, work):
    import mkinstance
    build = os.path.abspath(a.build)
    master = os.path.join(build, "libexec", "master")
    if not os.access(master, os.X_OK):
        die("no %s: build first" % master)
    import ternlab
    port = ternlab.free_port()
    d = os.path.join(work, "tern")
    if a.instance == "bench":
        maildir = ensure_system_user(a.user)
        etc = mkinstance.create(
            d, build, {"smtp": port},
            main_extra={
                "virtual_user_maps": "", "alias_maps": "",
                "myhostname": "bench.localhost",
                "mydestination": "localhost, localhost.localdomain, "
                                 "bench.localhost",
            },
            aliases={"postmaster": a.user, "root": a.user,
                     "mailer-daemon": a.user},
            hostname="bench.localhost")
        rcpt = a.user + "@localhost"
    else:
        etc = mkinstance.create(d, build, {"smtp": port}, users=("demo",))
        maildir = os.path.join(d, "home", "demo", "Maildir")
        rcpt = "demo@localhost"
    spool = os.path.join(d, "spool")

    def queue_empty():
        for q in ("incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(spool, q)):
                if files:
                    return False
        return True

    trace = os.path.join(work, "tern.strace")
    t = Traced([master, "-f", "-c", etc], trace,
               env=dict(os.environ, MAIL_CONFIG=etc))
    try:
        wait_for(lambda: port_open(port) or t.proc.poll() is not None, 60,
                 "Tern's SMTP port")
        if t.proc.poll() is not None:
            die("master under strace exited; see %s.out" % trace)
        start = wait_quiet(trace)
        load(port, rcpt, maildir, a, queue_empty)
        end = wait_quiet(trace)
    finally:
        t.stop(traced_child(t.proc.pid) if t.proc.poll() is None else None)
    calls, pids = count_calls(trace, start, end)
    report("Tern (%s instance)" % a.instance, calls, pids, a.msgs, a.top)


POSTFIX_MAIN = """\
compatibility_level = 3.6
config_directory = {conf}
queue_directory = {queue}
data_directory = {data}
syslog_name = postfix-syscalls
maillog_file = {log}
maillog_file_prefixes = {d}
myhostname = bench.localhost
mydomain = localhost
myorigin = localhost
mydestination = localhost, localhost.localdomain, bench.localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
default_transport = error
relay_transport = error
alias_maps =
alias_database =
home_mailbox = Maildir/
mailbox_size_limit = 0
biff = no
append_dot_mydomain = no
readme_directory = no
"""


def run_postfix(a, work):
    if os.geteuid() != 0:
        die("--postfix needs root")
    pmaster = "/usr/lib/postfix/sbin/master"
    if not os.access(pmaster, os.X_OK):
        die("no %s (apt-get install postfix)" % pmaster)
    import ternlab
    port = ternlab.free_port()
    maildir = ensure_system_user(a.user)
    d = os.path.join(work, "postfix")
    conf, queue, data = (os.path.join(d, x) for x in ("etc", "queue", "data"))
    for p in (conf, queue, data):
        os.makedirs(p)
    os.chmod(d, 0o755)
    shutil.chown(data, "postfix")
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write(POSTFIX_MAIN.format(conf=conf, queue=queue, data=data,
                                    log=os.path.join(d, "maillog"), d=d))
    # Debian's master.cf with smtpd on our port; no chroot (the queue is a
    # fresh directory without the chroot's copies of /etc files)
    out = []
    with open("/usr/share/postfix/master.cf.dist") as f:
        for line in f:
            if re.match(r"^smtp\s+inet\s", line):
                line = re.sub(r"^smtp(\s+)", "127.0.0.1:%d\\1" % port, line)
            fields = line.split()
            if (len(fields) >= 8 and not line[0].isspace()
                    and not line.startswith("#") and fields[4] == "y"):
                fields[4] = "n"
                line = " ".join(fields) + "\n"
            out.append(line)
    with open(os.path.join(conf, "master.cf"), "w") as f:
        f.writelines(out)
    env = dict(os.environ, MAIL_CONFIG=conf)
    # creates the queue's subdirectories (post-install create-missing)
    r = subprocess.run(["postfix", "-c", conf, "check"], env=env)
    if r.returncode != 0:
        die("postfix -c %s check failed; see %s/maillog" % (conf, d))

    def queue_empty():
        for q in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(queue, q)):
                if files:
                    return False
        return True

    trace = os.path.join(work, "postfix.strace")
    t = Traced([pmaster, "-d", "-c", conf], trace, env=env)
    try:
        wait_for(lambda: port_open(port) or t.proc.poll() is not None, 60,
                 "Postfix's SMTP port")
        if t.proc.poll() is not None:
            die("Postfix master under strace exited; see %s.out" % trace)
        start = wait_quiet(trace)
        load(port, a.user + "@localhost", maildir, a, queue_empty)
        end = wait_quiet(trace)
    finally:
        t.stop(traced_child(t.proc.pid) if t.proc.poll() is None else None)
    calls, pids = count_calls(trace, start, end)
    report("Postfix", calls, pids, a.msgs, a.top)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--msgs", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--instance", choices=("bench", "ternlab"),
                    default="bench" if os.geteuid() == 0 else "ternlab")
    ap.add_argument("--user", default=os.environ.get("BENCH_USER",
                                                     "benchuser"))
    ap.add_argument("--postfix", action="store_true",
                    help="also Postfix, for comparison")
    ap.add_argument("--no-tern", action="store_true")
    ap.add_argument("--build", default=os.environ.get(
        "TERN_BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (traces, logs)")
    a = ap.parse_args()
    if a.instance == "bench" and os.geteuid() != 0:
        die("--instance bench needs root (system users, privilege drops)")
    for tool in ("strace", SMTP_SOURCE):
        if not shutil.which(tool):
            die("%s missing (apt-get install strace postfix)" % tool)
    work = tempfile.mkdtemp(prefix="tern-syscalls-")
    os.chmod(work, 0o755)
    try:
        if not a.no_tern:
            run_tern(a, work)
        if a.postfix:
            run_postfix(a, work)
    finally:
        if a.keep:
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
