"""master(8) against live test daemons (tests/daemons/echod, crashd).

Each test writes main.conf/master.conf into a fresh temporary directory,
starts `master -f -c DIR` and talks to the services on free loopback
ports. Binaries come from $TERN_BUILD (libexec/master, tests/daemons/*).
"""
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BUILD = os.environ.get("TERN_BUILD", "")
MASTER = os.path.join(BUILD, "libexec", "master")
DAEMONS = os.path.join(BUILD, "tests", "daemons")
# bound for waits on a condition and for socket operations: only broken
# behaviour (or a hung machine) reaches it; no test asserts a duration
TIMEOUT = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=TIMEOUT, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Client:
    """A line client for echod."""

    def __init__(self, port, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.f = self.sock.makefile("rwb")

    def cmd(self, line):
        self.f.write(line.encode() + b"\r\n")
        self.f.flush()
        return self.f.readline().decode().rstrip("\r\n")

    def pid(self):
        reply = self.cmd("PID")
        if not reply.startswith("+PID "):
            raise AssertionError("bad PID reply %r" % reply)
        return int(reply.split()[1])

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()


@unittest.skipUnless(os.path.exists(MASTER)
                     and os.path.exists(os.path.join(DAEMONS, "echod")),
                     "set TERN_BUILD to a build directory")
class MasterTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tern-master-")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.libexec = os.path.join(self.dir, "libexec")
        self.queue = os.path.join(self.dir, "queue")
        self.maillog = os.path.join(self.dir, "maillog")
        os.mkdir(self.etc)
        os.mkdir(self.libexec)
        for name in ("echod", "crashd"):
            os.symlink(os.path.join(DAEMONS, name),
                       os.path.join(self.libexec, name))
        # echod under other names: master answers 421 for "smtpd";
        # trigd and reqd are echod on the trigger and request skeletons
        for name in ("smtpd", "trigd", "reqd"):
            os.symlink(os.path.join(DAEMONS, "echod"),
                       os.path.join(self.libexec, name))
        owner = "nobody" if os.geteuid() == 0 else \
            pwd.getpwuid(os.getuid()).pw_name
        with open(os.path.join(self.etc, "main.conf"), "w") as f:
            f.write("queue_directory = %s\n" % self.queue)
            f.write("daemon_directory = %s\n" % self.libexec)
            f.write("maillog_file = %s\n" % self.maillog)
            f.write("mail_owner = %s\n" % owner)
            f.write("myhostname = test.example\n")
            # these tests count the processes of a service: one event
            # server process until it is full (the spread tests below set
            # their own value)
            f.write("event_server_process_min = 1\n")
        self.master = None
        self.stderr_path = os.path.join(self.dir, "master.stderr")
        self.seen_pids = set()

    def tearDown(self):
        if self.master and self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.master.wait(10)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait(5)
        for pid in self.seen_pids:     # only our own daemons
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    mine = self.dir.encode() in f.read()
                if mine:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers --------------------------------------------------------

    def write_master_conf(self, lines):
        path = os.path.join(self.etc, "master.conf")
        with open(path + ".tmp", "w") as f:
            f.write("# service type private unpriv chroot wakeup maxproc "
                    "command\n")
            f.write("\n".join(lines) + "\n")
        os.rename(path + ".tmp", path)

    def start_master(self, lines):
        self.write_master_conf(lines)
        self.errf = open(self.stderr_path, "wb")
        self.addCleanup(self.errf.close)
        self.master = subprocess.Popen([MASTER, "-f", "-c", self.etc],
                                       stdin=subprocess.DEVNULL,
                                       stdout=self.errf, stderr=self.errf)
        ok = wait_for(lambda: "daemon started" in self.log()
                      or self.master.poll() is not None)
        self.assertTrue(ok)
        self.assertIsNone(self.master.poll(), self.log() + self.stderr())

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def client(self, port):
        c = Client(port)
        self.addCleanup(c.close)
        return c

    def pid_of(self, port):
        c = Client(port)
        try:
            pid = c.pid()
        finally:
            c.close()
        self.seen_pids.add(pid)
        return pid

    def echo_service(self, port, *args, maxproc="0", command="echod"):
        return "127.0.0.1:%d inet n - n - %s %s %s" % (
            port, maxproc, command, " ".join(args))

    # ---- tests ------------------------------------------------------------

    def test_check_config(self):
        port = free_port()
        self.write_master_conf([self.echo_service(port)])
        r = subprocess.run([MASTER, "-t", "-c", self.etc], timeout=10,
                           capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.write_master_conf(["127.0.0.1:%d inet n - n - 0" % port])
        r = subprocess.run([MASTER, "-t", "-c", self.etc], timeout=10,
                           capture_output=True)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr)
        self.write_master_conf(["999.1.1.1:%d inet n - n - 0 echod" % port])
        r = subprocess.run([MASTER, "-t", "-c", self.etc], timeout=10,
                           capture_output=True)
        self.assertEqual(r.returncode, 1)

    def test_echo(self):
        port = free_port()
        self.start_master([self.echo_service(port)])
        c = self.client(port)
        self.assertEqual(c.cmd("hello"), "+ECHO hello")
        self.assertEqual(c.cmd("two words"), "+ECHO two words")
        self.seen_pids.add(c.pid())
        self.assertTrue(os.path.exists(os.path.join(self.queue, "pid",
                                                    "master.pid")))

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_privileges_per_column(self):
        p1, p2 = free_port(), free_port()
        self.start_master(["127.0.0.1:%d inet n y n - 0 echod" % p1,
                           "127.0.0.1:%d inet n n n - 0 echod" % p2])

        def uid_of(pid):
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        return int(line.split()[1])
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual(uid_of(self.pid_of(p1)), nobody)
        self.assertEqual(uid_of(self.pid_of(p2)), 0)
        self.assertEqual(os.stat(self.queue + "/private").st_uid, nobody)

    def test_client_limit(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-l", "5")])
        clients = [self.client(port) for _ in range(5)]
        pids = {c.pid() for c in clients}
        self.seen_pids |= pids
        self.assertEqual(len(pids), 1, "5 clients, one process")
        sixth = self.client(port)
        p6 = sixth.pid()
        self.seen_pids.add(p6)
        self.assertNotIn(p6, pids, "client_limit exceeded: second process")
        # the first process takes clients again once one leaves
        clients[0].close()
        self.assertEqual(sixth.cmd("still"), "+ECHO still")

    # ---- event_server_process_min ----------------------------------------

    def set_process_min(self, value):
        with open(os.path.join(self.etc, "main.conf"), "a") as f:
            f.write("event_server_process_min = %s\n" % value)

    def children_running(self, command):
        """PIDs of master's live children whose program is command."""
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except (OSError, IndexError):
                continue
            if (int(fields[1]) == self.master.pid and fields[0] != "Z"
                    and os.path.basename(argv0) == command.encode()):
                out.append(int(name))
        return sorted(out)

    def stopped(self, pid):
        """SIGSTOP pid until the test ends (SIGCONT at cleanup)."""
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(lambda: pid_alive(pid) and os.kill(pid, signal.SIGCONT))

    def test_spread_forks_while_the_first_has_room(self):
        self.set_process_min(2)
        port = free_port()
        self.start_master([self.echo_service(port)])
        a = self.client(port)
        pa = a.pid()
        self.seen_pids.add(pa)
        # pa has room for many more clients, yet the next arrival forks a
        # second process; with pa stopped, that one must take it from the
        # shared listener
        self.stopped(pa)
        b = self.client(port)
        pb = b.pid()
        self.seen_pids.add(pb)
        self.assertNotEqual(pa, pb)
        os.kill(pa, signal.SIGCONT)
        self.assertEqual(a.cmd("still"), "+ECHO still")
        self.assertEqual(b.cmd("too"), "+ECHO too")
        # the target is reached: no third process for more clients
        more = [self.client(port) for _ in range(4)]
        pids = {c.pid() for c in more}
        self.seen_pids |= pids
        self.assertLessEqual(pids, {pa, pb})
        self.assertEqual(self.children_running("echod"), sorted([pa, pb]))
        self.assertNotIn("back-off", self.log())

    def test_spread_one_means_one_process(self):
        self.set_process_min(1)
        port = free_port()
        self.start_master([self.echo_service(port)])
        a = self.client(port)
        pa = a.pid()
        self.seen_pids.add(pa)
        self.stopped(pa)
        b = Client(port)
        self.addCleanup(b.close)
        b.f.write(b"PID\r\n")
        b.f.flush()
        # a negative check that cannot flake (a correct master never
        # starts a second process here): only a broken one answers
        r, _, _ = select.select([b.sock], [], [], 0.5)
        self.assertEqual(r, [], "a second process answered")
        os.kill(pa, signal.SIGCONT)
        self.assertEqual(b.f.readline().decode().strip(), "+PID %d" % pa)
        self.assertEqual(self.children_running("echod"), [pa])

    def test_spread_capped_by_maxproc(self):
        self.set_process_min(4)
        port = free_port()
        self.start_master([self.echo_service(port, maxproc="2")])
        a = self.client(port)
        pa = a.pid()
        self.seen_pids.add(pa)
        self.stopped(pa)
        b = self.client(port)
        pb = b.pid()
        self.seen_pids.add(pb)
        self.assertNotEqual(pa, pb)
        os.kill(pa, signal.SIGCONT)
        clients = [self.client(port) for _ in range(6)]
        self.seen_pids |= {c.pid() for c in clients}
        self.assertEqual(self.children_running("echod"), sorted([pa, pb]))
        self.assertNotIn("process limit", self.log())

    def test_kill9_child_replaced(self):
        port = free_port()
        self.start_master([self.echo_service(port)])
        p1 = self.pid_of(port)
        os.kill(p1, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: not pid_alive(p1)))
        p2 = self.pid_of(port)
        self.assertNotEqual(p1, p2)
        self.assertTrue(wait_for(
            lambda: "pid %d killed by signal 9" % p1 in self.log()),
            self.log())
        self.assertNotIn("back-off", self.log())

    def test_crash_in_session_not_throttled(self):
        port = free_port()
        self.start_master([self.echo_service(port)])
        c = Client(port)
        p1 = c.pid()
        c.f.write(b"CRASH\r\n")
        c.f.flush()
        self.assertEqual(c.f.readline(), b"")
        c.close()
        p2 = self.pid_of(port)
        self.assertNotEqual(p1, p2)
        self.assertNotIn("back-off", self.log())

    CRASH_RE = re.compile(r"process \S*/crashd pid (\d+) exit status 2"
                          r"|crashd: back-off (\d+) seconds")

    def crash_events(self):
        """crashd's exits ("exit") and master's back-offs (seconds), in
        log order."""
        return ["exit" if m.group(1) else int(m.group(2))
                for m in self.CRASH_RE.finditer(self.log())]

    def assertThrottled(self, events, backoffs):
        """Each start-up crash is followed by one back-off before the next
        fork (no crash without its back-off), with these back-offs."""
        self.assertEqual(events[:2 * len(backoffs)],
                         [x for b in backoffs for x in ("exit", b)],
                         self.log())

    def test_crash_at_startup_throttled(self):
        port = free_port()
        self.start_master(["127.0.0.1:%d inet n - n - 0 crashd" % port])
        t0 = time.monotonic()
        self.assertEqual(self.crash_events(), [], "crashd ran before a client")
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(c.close)
        self.assertTrue(wait_for(lambda: self.crash_events().count("exit") >= 3),
                        self.log())
        # the third fork waited out the first two back-offs (a lower bound)
        self.assertGreaterEqual(time.monotonic() - t0, 1 + 2 - 0.05)
        self.assertTrue(wait_for(lambda: len(self.crash_events()) >= 6),
                        self.log())
        self.assertThrottled(self.crash_events(), [1, 2, 4])
        self.assertIsNone(self.master.poll())

    def test_max_use(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-o", "max_use=2")])
        p1 = self.pid_of(port)
        p2 = self.pid_of(port)
        self.assertEqual(p1, p2)
        self.assertTrue(wait_for(lambda: not pid_alive(p1)))
        p3 = self.pid_of(port)
        self.assertNotEqual(p3, p1)
        # the last reply before a recycling exit still reaches the client
        c = self.client(port)
        p4 = c.pid()
        self.seen_pids.add(p4)
        self.assertEqual(c.cmd("QUIT"), "+BYE")
        self.assertTrue(wait_for(lambda: not pid_alive(p4)))
        self.assertNotIn("exit status", self.log())

    def test_process_limit_smtpd_421(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-l", "1", maxproc="1",
                                             command="smtpd")])
        busy = self.client(port)
        self.seen_pids.add(busy.pid())
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        reply = s.makefile("rb").readline()
        self.assertEqual(reply,
                         b"421 4.3.2 test.example Service not available: "
                         b"too many connections, try again later\r\n")
        self.assertTrue(wait_for(lambda: "has reached its process limit "
                                 "\"1\"" in self.log()), self.log())
        busy.close()

        def served():            # once the child has noticed the close
            try:
                return self.pid_of(port)
            except AssertionError:
                return None
        self.assertTrue(wait_for(served))

    def overloaded_reply(self, port):
        """Hold the only process of a maxproc-1, client_limit-1 service and
        return what master sends a second client (b"" = closed)."""
        busy = self.client(port)
        self.seen_pids.add(busy.pid())
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        reply = s.makefile("rb").read()     # until master closes
        self.assertTrue(wait_for(lambda: "has reached its process limit "
                                 "\"1\"" in self.log()), self.log())
        return reply

    def test_process_limit_smtpd_reply_from_main_conf(self):
        with open(os.path.join(self.etc, "main.conf"), "a") as f:
            f.write("smtpd_overload_reply = 421 4.3.2 $myhostname busy, "
                    "try later\n")
        port = free_port()
        self.start_master([self.echo_service(port, "-l", "1", maxproc="1",
                                             command="smtpd")])
        self.assertEqual(self.overloaded_reply(port),
                         b"421 4.3.2 test.example busy, try later\r\n")

    def test_process_limit_empty_reply_just_closes(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-l", "1", "-o",
                                             "smtpd_overload_reply=",
                                             maxproc="1", command="smtpd")])
        self.assertEqual(self.overloaded_reply(port), b"")

    def test_process_limit_reply_for_any_command(self):
        # master knows no command by name: echod gets a reply as soon as
        # its master.conf line gives it one ("{ }" holds the blanks)
        port = free_port()
        self.start_master([self.echo_service(
            port, "-l", "1", "-o",
            "{ echod_overload_reply = -ERR [SYS/TEMP] $myhostname busy }",
            maxproc="1")])
        self.assertEqual(self.overloaded_reply(port),
                         b"-ERR [SYS/TEMP] test.example busy\r\n")
        # the setting is master's: echod never sees it (nor warns about it)
        self.assertNotIn("echod_overload_reply", self.log() + self.stderr())

    def test_process_limit_other_waits(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-l", "1", maxproc="1")])
        busy = self.client(port)
        p1 = busy.pid()
        self.seen_pids.add(p1)
        # master has seen its only child full
        self.assertTrue(wait_for(lambda: "has reached its process limit "
                                 "\"1\"" in self.log()), self.log())
        waiting = Client(port)
        self.addCleanup(waiting.close)
        waiting.f.write(b"PID\r\n")
        waiting.f.flush()
        # nothing may answer while the only process is busy; a negative
        # check that cannot flake (a correct master never answers here),
        # it only gives a broken one a moment to show itself
        r, _, _ = select.select([waiting.sock], [], [], 0.5)
        self.assertEqual(r, [], "answered while the process limit was reached")
        busy.close()
        self.assertEqual(waiting.f.readline().decode().strip(), "+PID %d" % p1)

    def test_reload(self):
        p1, p2 = free_port(), free_port()
        self.start_master([self.echo_service(p1)])
        old_pid = self.pid_of(p1)
        failures, successes = [], [0]
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                try:
                    c = Client(p1)
                    r = c.cmd("ping")
                    c.close()
                    if r != "+ECHO ping":
                        failures.append(r)
                    else:
                        successes[0] += 1
                except OSError as e:
                    failures.append(repr(e))
        t = threading.Thread(target=hammer)
        t.start()
        try:
            self.assertTrue(wait_for(lambda: successes[0] >= 5 or failures))
            self.write_master_conf([self.echo_service(p1),
                                    self.echo_service(p2)])
            self.master.send_signal(signal.SIGHUP)

            def new_port_up():
                try:
                    return self.pid_of(p2)
                except OSError:
                    return None
            self.assertTrue(wait_for(new_port_up), self.log())
            # keep hammering until the old child has retired, and for a
            # few more connections after that: clients across the whole
            # switch-over, all answered
            self.assertTrue(wait_for(lambda: not pid_alive(old_pid)),
                            "old child retires after reload")
            after = successes[0]
            self.assertTrue(wait_for(lambda: successes[0] >= after + 5
                                     or failures))
        finally:
            stop.set()
            t.join(TIMEOUT)
        self.assertEqual(failures, [])
        self.assertIn("reload", self.log())
        # a broken master.conf keeps the old configuration
        self.write_master_conf(["127.0.0.1:%d inet n - n - 0" % p1])
        self.master.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "keeping the old configuration"
                                 in self.log()), self.log())
        self.pid_of(p1)
        self.pid_of(p2)
        # removing a service closes its listener
        self.write_master_conf([self.echo_service(p1)])
        self.master.send_signal(signal.SIGHUP)

        def p2_closed():
            try:
                socket.create_connection(("127.0.0.1", p2), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True
        self.assertTrue(wait_for(p2_closed))
        self.pid_of(p1)

    def test_wakeup_and_trigger_server(self):
        self.start_master(["trig unix - - n 1 1 trigd",
                           "ptrig unix n - n 0 1 trigd"])
        self.assertEqual(os.stat(os.path.join(
            self.queue, "public", "ptrig")).st_mode & 0o777, 0o666)
        # the start-up wakeup starts the trigger server
        self.assertTrue(wait_for(lambda: "trigger: W" in self.log()),
                        self.log())
        sock = os.path.join(self.queue, "private", "trig")
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(sock)
            s.sendall(b"A")
        self.assertTrue(wait_for(lambda: "trigger: A" in self.log()),
                        self.log())
        # periodic: more wakeups arrive, from one long-lived process
        self.assertTrue(wait_for(lambda: self.log().count("trigger: W") >= 3))
        pids = {line.split("[")[1].split("]")[0]
                for line in self.log().splitlines() if "trigger:" in line}
        self.assertEqual(len(pids), 1, self.log())

    def test_request_server(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-o", "max_use=3",
                                             maxproc="2", command="reqd")])
        a = self.client(port)
        pa = a.pid()
        b = self.client(port)           # a is busy: a second process
        pb = b.pid()
        self.seen_pids |= {pa, pb}
        self.assertNotEqual(pa, pb)
        self.assertEqual(a.cmd("x"), "+ECHO x")
        a.close()
        b.close()
        pids = {self.pid_of(port) for _ in range(4)}
        self.assertLessEqual(len(pids - {pa, pb}), 2)
        self.assertNotIn("back-off", self.log())

    def test_second_master_refused(self):
        port = free_port()
        self.start_master([self.echo_service(port)])
        r = subprocess.run([MASTER, "-f", "-c", self.etc], timeout=10,
                           capture_output=True, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"the Tern mail system is already running (pid %d)"
                      % self.master.pid, r.stderr)
        self.pid_of(port)

    def test_sigterm_stops_everything(self):
        p1, p2 = free_port(), free_port()
        self.start_master([self.echo_service(p1),
                           self.echo_service(p2, "-l", "1")])
        held = self.client(p2)
        pids = {self.pid_of(p1), held.pid()}
        self.seen_pids |= pids
        self.master.send_signal(signal.SIGTERM)
        self.assertEqual(self.master.wait(TIMEOUT), 0)
        for pid in pids:
            self.assertFalse(pid_alive(pid), "child %d survived" % pid)
        self.assertFalse(os.path.exists(os.path.join(self.queue, "pid",
                                                     "master.pid")))
        self.assertIn("terminating on signal 15", self.log())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", p1), timeout=1).close()

    # ---- supervision under churn -------------------------------------------

    def master_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.master.pid))

    def master_zombies(self):
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.master.pid and fields[0] == "Z":
                out.append(int(name))
        return out

    def test_no_fd_leak_or_zombies_over_50_restarts(self):
        port = free_port()
        self.start_master([self.echo_service(port, "-o", "max_use=1")])
        prev = self.pid_of(port)
        self.assertTrue(wait_for(lambda: not pid_alive(prev)))
        before = self.master_fds()
        for n in range(50):
            if n % 2:
                pid = self.pid_of(port)             # exits after one use
            else:
                c = self.client(port)
                pid = c.pid()
                self.seen_pids.add(pid)
                os.kill(pid, signal.SIGKILL)        # dies after serving
                c.close()
            self.assertNotEqual(pid, prev)
            self.assertTrue(wait_for(lambda: not pid_alive(pid)), pid)
            prev = pid
        self.assertTrue(wait_for(lambda: not self.master_zombies()),
                        "unreaped: %r" % self.master_zombies())
        self.assertEqual(self.master_fds(), before,
                         os.listdir("/proc/%d/fd" % self.master.pid))
        self.assertNotIn("back-off", self.log())

    def test_backoff_bounded_by_service_throttle_time(self):
        with open(os.path.join(self.etc, "main.conf"), "a") as f:
            f.write("service_throttle_time = 2s\n")
        port = free_port()
        self.start_master(["127.0.0.1:%d inet n - n - 0 crashd" % port])
        t0 = time.monotonic()
        self.assertEqual(self.crash_events(), [], "crashd ran before a client")
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(c.close)
        # 1, then doubling, capped at 2 from then on
        self.assertTrue(wait_for(lambda: len(self.crash_events()) >= 8),
                        self.log())
        self.assertThrottled(self.crash_events(), [1, 2, 2, 2])
        # and waited out: the fourth fork came after 1 + 2 + 2 seconds
        self.assertGreaterEqual(time.monotonic() - t0, 1 + 2 + 2 - 0.05)
        self.assertIsNone(self.master.poll())

    def test_sighup_while_children_busy(self):
        port = free_port()
        self.start_master([self.echo_service(port)])
        busy = self.client(port)
        old = busy.pid()
        self.seen_pids.add(old)
        self.master.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload" in self.log()))
        # the busy child finishes its client, on the old configuration
        self.assertEqual(busy.pid(), old)
        # new clients go to a new child once the old one has handled its
        # own SIGHUP (a connection racing that may still be accepted by it)
        def new_child():
            pid = self.pid_of(port)
            return pid if pid != old else None
        new = wait_for(new_child)
        self.assertTrue(new, "the reloaded child kept taking new clients")
        busy.close()
        self.assertTrue(wait_for(lambda: not pid_alive(old)),
                        "retired child did not exit")
        self.assertTrue(wait_for(lambda: not self.master_zombies()))
        self.assertEqual(self.pid_of(port), new)
        self.assertIsNone(self.master.poll())


if __name__ == "__main__":
    unittest.main()
