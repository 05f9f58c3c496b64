"""The Debian package, on this machine: `make deb` builds dist/tern_*.deb in
a temporary directory; dpkg -i installs it beside the system's Postfix;
files, owners, set-gid bits, conffiles, accounts and the manual sections
are checked; master is started (`ternctl start` once it exists), a message
sent with Tern's sendmail (SMTP while there is none) lands in the Maildir
of a temporary user; then `dpkg --purge` must leave nothing behind (files,
accounts the package made, alternatives, statoverrides, systemd links)
while Postfix's files are exactly as they were.

Root only; skipped without dpkg-buildpackage and debhelper, or when this
machine already has a Tern installation (a package, /etc/tern, the spool)
that the test's purge would destroy."""
import grp
import hashlib
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

from ternlab import SRCDIR, free_port, wait_for

LIBEXEC = "/usr/libexec/tern"
SBIN = "/usr/sbin"
ETC = "/etc/tern"
SPOOL = "/var/spool/tern"
DATA = "/var/lib/tern"
ACCOUNTS = ("tern", "ternlogin", "ternvmail")
SETGID = (os.path.join(LIBEXEC, "postdrop"), os.path.join(SBIN, "ternqueue"))
TERN_COMMANDS = ("ternconf", "ternmap", "ternuser", "ternctl", "ternqueue",
                 "ternsuper", "terncat")


def run(argv, **kw):
    kw.setdefault("timeout", 600)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def dpkg(*args):
    """dpkg, waiting while another dpkg/apt holds the lock"""
    deadline = time.monotonic() + 600
    while True:
        r = run(["dpkg"] + list(args))
        if r.returncode == 0 or "lock" not in r.stderr or \
                time.monotonic() > deadline:
            return r
        time.sleep(2)


def installed(pkg):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and "installed" in r.stdout.split()[-1:]


def package_files(pkg):
    r = run(["dpkg-query", "-L", pkg])
    return [l for l in r.stdout.splitlines() if l.startswith("/")] \
        if r.returncode == 0 else []


def snapshot(paths):
    """what a change to any of these paths would show"""
    snap = {}
    for p in paths:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            snap[p] = None
            continue
        entry = (st.st_mode, st.st_uid, st.st_gid)
        if os.path.isdir(p) and not os.path.islink(p):
            # shared directories (/etc, /usr/sbin) change as others' files
            # come and go: their own mode and owner only
            snap[p] = entry
            continue
        entry += (st.st_size, st.st_mtime_ns)
        if os.path.islink(p):
            entry += (os.readlink(p),)
        elif os.path.isfile(p):
            with open(p, "rb") as f:
                entry += (hashlib.sha256(f.read()).hexdigest(),)
        snap[p] = entry
    return snap


def tree(top):
    out = []
    for d, dirs, files in os.walk(top):
        out.append(d)
        out.extend(os.path.join(d, f) for f in files)
    return out


def postfix_paths():
    paths = set(package_files("postfix"))
    for top in ("/etc/postfix", "/var/spool/postfix", "/var/lib/postfix"):
        if os.path.isdir(top):
            paths.update(tree(top))
    paths.update(("/usr/sbin/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"))
    return sorted(paths)


def accounts():
    users = {u: True for u in ACCOUNTS}
    for u in ACCOUNTS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            users[u] = False
    groups = {}
    for g in ("ternpostdrop",) + ACCOUNTS:
        try:
            grp.getgrnam(g)
            groups[g] = True
        except KeyError:
            groups[g] = False
    return users, groups


def other_mta():
    """a sendmail, mailq or newaliases that is not an alternatives link"""
    for link, name in (("/usr/sbin/sendmail", "sendmail"), ("/usr/bin/mailq", "mailq"),
                       ("/usr/bin/newaliases", "newaliases")):
        if os.path.lexists(link) and not (
                os.path.islink(link) and
                os.readlink(link) == "/etc/alternatives/" + name):
            return True
    return False


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def why_skip():
    if os.geteuid() != 0:
        return "needs root (dpkg -i)"
    for tool in ("dpkg-buildpackage", "dh", "git"):
        if shutil.which(tool) is None:
            return "%s is missing (make deps-deb)" % tool
    if not os.path.isdir(os.path.join(SRCDIR, ".git")) and \
            not os.path.isfile(os.path.join(SRCDIR, ".git")):
        return "not a git tree (make deb copies git ls-files)"
    if installed("tern") or installed("tern-mta"):
        return "a tern package is installed here"
    for p in (ETC, SPOOL, DATA, LIBEXEC):
        if os.path.exists(p):
            return "%s exists: this machine has a Tern installation" % p
    return None


SKIP = why_skip()


@unittest.skipIf(SKIP, SKIP or "")
class PackageTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tern-package-test.")
        os.chmod(cls.dir, 0o755)
        cls.dist = os.path.join(cls.dir, "dist")
        cls.built, cls.build_log = cls.make_deb(SRCDIR, cls.dist)

    @classmethod
    def make_deb(cls, src, dist):
        r = run(["make", "-C", src, "deb", "JOBS=2",
                 "DEB_BUILD=" + dist + "-build", "DIST=" + dist], timeout=1800)
        return r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]

    @classmethod
    def tearDownClass(cls):
        if installed("tern") or os.path.exists(ETC):
            dpkg("--purge", "tern")
        shutil.rmtree(cls.dir, True)

    def deb(self, name, dist=None):
        dist = dist or self.dist
        for f in os.listdir(dist):
            if f.startswith(name + "_") and f.endswith(".deb"):
                return os.path.join(dist, f)
        self.fail("no %s .deb in %s" % (name, os.listdir(dist)))

    def setUp(self):
        self.assertTrue(self.built, "make deb failed:\n" + self.build_log)
        self.user = "ternpkg" + uuid.uuid4().hex[:6]
        self.home = os.path.join(self.dir, self.user)
        r = run(["useradd", "--no-user-group", "--gid", "users", "--create-home",
                 "--home-dir", self.home, "--shell", "/usr/sbin/nologin",
                 self.user])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(run, ["userdel", self.user])

    def purge_if_installed(self):
        """a failed test leaves no package for the next one"""
        if installed("tern") or os.path.exists(ETC):
            dpkg("--purge", "tern")

    def master_pid(self):
        try:
            with open(os.path.join(SPOOL, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.exists("/proc/%d" % pid) else None

    def stop_master(self):
        if os.path.exists(os.path.join(SBIN, "ternctl")):
            run([os.path.join(SBIN, "ternctl"), "stop"], timeout=120)
        pid = self.master_pid()
        if pid:
            os.kill(pid, 15)
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), 60,
                     what="master to exit")

    def test_install_run_purge(self):
        postfix_before = snapshot(postfix_paths())
        users_before, groups_before = accounts()
        overrides_before = run(["dpkg-statoverride", "--list"]).stdout

        r = dpkg("-i", self.deb("tern"))
        self.addCleanup(self.purge_if_installed)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.addCleanup(self.stop_master)
        self.check_installed()
        self.assertEqual(snapshot(postfix_paths()), postfix_before,
                         "installing tern changed Postfix's files")

        if installed("postfix"):
            # the MTA package conflicts with every mail-transport-agent:
            # not installable here, which is why tern itself provides none
            r = dpkg("--dry-run", "-i", self.deb("tern-mta"))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("mail-transport-agent", r.stdout + r.stderr)

        self.deliver()
        # the same version again: prerm upgrade stops master, postinst
        # starts it again (where systemd runs, debhelper's snippet does)
        old = self.master_pid()
        self.assertTrue(old, "no master.pid of a running master")
        r = dpkg("-i", self.deb("tern"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        if not os.path.isdir("/run/systemd/system"):
            wait_for(lambda: self.master_pid() not in (None, old), 60,
                     what="master started again after the upgrade")
        self.stop_master()

        r = dpkg("--purge", "tern")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_purged(users_before, groups_before, overrides_before)
        self.assertEqual(snapshot(postfix_paths()), postfix_before,
                         "tern's install or purge changed Postfix's files")

    def test_alternatives_and_setgid_helpers(self):
        """sendmail, postdrop and ternqueue present (stubs where the tree
        has none yet): set-gid through dpkg-statoverride, and beside Postfix
        no alternative touches /usr/sbin/sendmail or Postfix's mailq and
        newaliases symlinks, not even when the file trigger runs"""
        src = os.path.join(self.dir, "stub-tree")
        os.mkdir(src)
        files = run(["git", "-C", SRCDIR, "ls-files", "-co", "--exclude-standard"]).stdout
        for f in files.splitlines():
            if os.path.isfile(os.path.join(SRCDIR, f)):
                os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
                shutil.copy2(os.path.join(SRCDIR, f), os.path.join(src, f))
        stub = ('#include <stdio.h>\nint main(int c, char **v)\n'
                '{ (void)c; printf("stub %s\\n", v[0]); return 0; }\n')
        for f in ("cmd/sendmail.c", "cmd/ternqueue.c", "postdrop/postdrop.c"):
            d = os.path.join(src, os.path.dirname(f))
            if os.path.isdir(d) and any(n.endswith(".c") for n in os.listdir(d)) \
                    and (not f.startswith("cmd/") or os.path.exists(os.path.join(src, f))):
                continue
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(src, f), "w") as fh:
                fh.write(stub)
        cm = os.path.join(src, "CMakeLists.txt")
        with open(cm) as fh:
            text = fh.read()
        m = re.search(r"set\(TERN_DAEMONS ([^)]*)\)", text)
        if "postdrop" not in m.group(1).split():
            text = text.replace(m.group(0), "set(TERN_DAEMONS %s postdrop)" % m.group(1))
            with open(cm, "w") as fh:
                fh.write(text)
        for argv in (["init", "-q"], ["add", "-A"],
                     ["-c", "user.name=t", "-c", "user.email=t@localhost",
                      "commit", "-qm", "stubs"]):
            r = run(["git", "-C", src] + argv)
            self.assertEqual(r.returncode, 0, r.stderr)
        dist = os.path.join(self.dir, "stub-dist")
        ok, log = self.make_deb(src, dist)
        self.assertTrue(ok, "make deb (stubs) failed:\n" + log)

        postfix_before = snapshot(postfix_paths())
        users_before, groups_before = accounts()
        overrides_before = run(["dpkg-statoverride", "--list"]).stdout
        r = dpkg("-i", self.deb("tern", dist))
        self.addCleanup(self.purge_if_installed)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_installed()
        self.assertEqual(os.readlink(os.path.join(LIBEXEC, "mailq")), "sendmail")
        for p in SETGID:
            self.assertTrue(os.stat(p).st_mode & 0o2000, p)
        self.assertEqual(snapshot(postfix_paths()), postfix_before)
        # what dpkg runs when another package installs or removes
        # /usr/sbin/sendmail: no change
        r = run(["/var/lib/dpkg/info/tern.postinst", "triggered",
                 "/usr/sbin/sendmail"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_alternatives()
        self.assertEqual(snapshot(postfix_paths()), postfix_before)
        r = dpkg("--purge", "tern")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_purged(users_before, groups_before, overrides_before)
        self.assertEqual(snapshot(postfix_paths()), postfix_before)

    def check_installed(self):
        for p in ("master", "smtpd", "qmgr", "local", "newaliases"):
            st = os.stat(os.path.join(LIBEXEC, p))
            self.assertEqual((st.st_uid, st.st_gid), (0, 0), p)
            self.assertTrue(st.st_mode & 0o111, p)
        for p in os.listdir(LIBEXEC):
            if not os.path.islink(os.path.join(LIBEXEC, p)):
                self.assertFalse(os.stat(os.path.join(LIBEXEC, p)).st_mode & 0o022, p)
        for c in ("ternconf", "ternmap", "ternuser"):
            self.assertTrue(os.access(os.path.join(SBIN, c), os.X_OK), c)
        ours = set(package_files("tern"))
        for path in ours:
            # nothing of ours in PATH but tern* commands
            if os.path.dirname(path) in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):
                self.assertTrue(os.path.basename(path).startswith("tern"), path)
        self.assertIn("/usr/share/man/man8/master.8tern.gz", ours)
        self.assertNotIn("/usr/share/man/man8/master.8.gz", ours)
        r = run(["dpkg-query", "-W", "-f=${Conffiles}", "tern"])
        for c in ("main.conf", "master.conf", "aliases"):
            self.assertIn(os.path.join(ETC, c), r.stdout)
        self.assertTrue(os.path.exists(os.path.join(ETC, "aliases.lmdb")),
                        "postinst built no alias table")
        self.assertTrue(os.path.isdir(SPOOL))
        r = run([os.path.join(SBIN, "ternconf"), "-d", "config_directory",
                 "daemon_directory", "command_directory", "queue_directory"])
        self.assertEqual(r.stdout, "config_directory = /etc/tern\n"
                         "daemon_directory = /usr/libexec/tern\n"
                         "command_directory = /usr/sbin\n"
                         "queue_directory = /var/spool/tern\n", r.stderr)
        users, groups = accounts()
        self.assertTrue(all(users.values()), users)
        self.assertTrue(groups["ternpostdrop"], groups)
        for u in ACCOUNTS:
            self.assertEqual(pwd.getpwnam(u).pw_shell, "/usr/sbin/nologin", u)
        gid = grp.getgrnam("ternpostdrop").gr_gid
        overrides = run(["dpkg-statoverride", "--list"]).stdout
        for p in SETGID:
            if os.path.exists(p):
                st = os.stat(p)
                self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                                 (0, gid, 0o2755), p)
                self.assertIn("root ternpostdrop 2755 " + p, overrides)
        if os.path.exists(os.path.join(LIBEXEC, "sendmail")):
            self.check_alternatives()
        if shutil.which("man"):
            r = run(["man", "-w", "8tern", "master"])
            self.assertEqual(r.stdout.strip(),
                             "/usr/share/man/man8/master.8tern.gz", r.stderr)
            if os.path.exists("/usr/share/man/man8/master.8postfix.gz"):
                r = run(["man", "-w", "master"])
                self.assertEqual(r.stdout.strip(),
                                 "/usr/share/man/man8/master.8postfix.gz")

    def check_alternatives(self):
        """beside another MTA's sendmail nothing is registered (Postfix's
        mailq and newaliases are symlinks that update-alternatives would
        replace); with none, /usr/sbin/sendmail and the others are Tern's"""
        r = run(["update-alternatives", "--query", "sendmail"])
        if other_mta():
            self.assertNotEqual(r.returncode, 0, r.stdout)
        else:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Alternative: %s/sendmail" % LIBEXEC, r.stdout)
            for link in ("/usr/sbin/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"):
                self.assertTrue(os.path.realpath(link).startswith(LIBEXEC + "/"), link)

    def configure_instance(self):
        """append test settings to the installed main.conf (a conffile:
        purge removes it whatever it holds); port 25 only if it is free"""
        port = 25
        if listening(25):
            port = free_port()
        with open(os.path.join(ETC, "main.conf"), "a") as f:
            f.write("\n# test_package\ninet_interfaces = 127.0.0.1\n"
                    "maillog_file = %s/maillog\n"
                    "smtpd_peername_lookup = no\n"
                    "dns_forwarders = 127.0.0.1@9\n" % self.dir)
        if port != 25:
            path = os.path.join(ETC, "master.conf")
            with open(path) as f:
                text = f.read()
            text, n = re.subn(r"(?m)^smtp(\s+inet\s)", r"127.0.0.1:%d\1" % port, text)
            self.assertEqual(n, 1, text)
            with open(path, "w") as f:
                f.write(text)
        return port

    def deliver(self):
        port = self.configure_instance()
        ternctl = os.path.join(SBIN, "ternctl")
        if os.path.exists(ternctl):
            r = run([ternctl, "start"], timeout=120)
        else:
            r = run([os.path.join(LIBEXEC, "master")], timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_for(lambda: listening(port), 60, what="SMTP on port %d" % port)
        token = uuid.uuid4().hex
        rcpt = "%s@localhost" % self.user
        msg = "From: root@localhost\nTo: %s\nSubject: %s\n\npackage test\n" % (rcpt, token)
        sendmail = os.path.join(LIBEXEC, "sendmail")
        if os.path.realpath("/usr/sbin/sendmail") == sendmail:
            sendmail = "/usr/sbin/sendmail"
        if os.path.exists(sendmail):
            r = run([sendmail, "-i", "-f", "root@localhost", rcpt], input=msg,
                    timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        else:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.sendmail("root@localhost", [rcpt], msg.replace("\n", "\r\n"))
        new = os.path.join(self.home, "Maildir", "new")

        def arrived():
            try:
                for f in os.listdir(new):
                    with open(os.path.join(new, f), "rb") as fh:
                        if token.encode() in fh.read():
                            return os.path.join(new, f)
            except FileNotFoundError:
                pass
            return None
        try:
            path = wait_for(arrived, 120, interval=0.2,
                            what="the message in %s" % new)
        except AssertionError:
            log = ""
            if os.path.exists(os.path.join(self.dir, "maillog")):
                with open(os.path.join(self.dir, "maillog")) as f:
                    log = f.read()[-4000:]
            raise AssertionError("no delivery; maillog:\n" + log)
        self.assertEqual(os.stat(path).st_uid, pwd.getpwnam(self.user).pw_uid)

    def check_purged(self, users_before, groups_before, overrides_before):
        self.assertFalse(installed("tern"))
        r = run(["dpkg-query", "-W", "-f=${Status}", "tern"])
        self.assertNotIn("config-files", r.stdout)
        for p in (ETC, SPOOL, DATA, LIBEXEC, "/usr/share/doc/tern",
                  "/lib/systemd/system/tern.service",
                  "/etc/logrotate.d/tern"):
            self.assertFalse(os.path.lexists(p), p)
        for c in TERN_COMMANDS:
            self.assertFalse(os.path.lexists(os.path.join(SBIN, c)), c)
        for d in ("/usr/share/man/man1", "/usr/share/man/man5", "/usr/share/man/man8"):
            left = [f for f in os.listdir(d) if re.search(r"\.[158]tern(\.gz)?$", f)]
            self.assertEqual(left, [], d)
        self.assertEqual(accounts(), (users_before, groups_before))
        r = run(["update-alternatives", "--query", "sendmail"])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        for link in ("/usr/sbin/sendmail", "/usr/bin/mailq", "/usr/bin/newaliases"):
            if os.path.islink(link):
                self.assertNotIn("tern", os.path.realpath(link), link)
        self.assertEqual(run(["dpkg-statoverride", "--list"]).stdout,
                         overrides_before)
        r = run(["find", "/etc/systemd", "-name", "tern*"])
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
