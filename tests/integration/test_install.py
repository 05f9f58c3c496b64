"""make install's layout: a build configured for a prefix with TERN_TESTS=OFF
needs no Check library and builds no test, installs the daemons and the
programs with Postfix's names (sendmail, mailq, newaliases) in
PREFIX/libexec/tern and only tern* commands in PREFIX/sbin, man pages as
NAME.Ntern with a matching .TH line, the configuration in the prefix's
etc/tern; its compiled-in defaults (`ternconf -d`) are those paths, and
`ternconf -M` (main.conf(5)) is the same whatever the prefix.

Builds its own tree from $TERN_SRCDIR in a temporary directory (no root
needed; nothing is installed outside it)."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRCDIR = os.environ.get("TERN_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))

# what may sit in PATH directories: never a Postfix (or sendmail) name
POSTFIX_NAMES = {"sendmail", "mailq", "newaliases", "postfix", "postconf",
                 "postmap", "postqueue", "postsuper", "postdrop", "postcat",
                 "postalias", "master", "smtpd", "qmgr", "local", "pickup",
                 "showq", "smtp", "anvil", "proxymap"}


def pkg_config_dirs():
    r = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                       capture_output=True, text=True, timeout=60)
    return [d for d in r.stdout.strip().split(":") if d]


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tern-install-test.")
        cls.prefix = "/opt/tern-test"
        cls.dest = os.path.join(cls.dir, "dest")
        cls.build = os.path.join(cls.dir, "build")
        # a pkg-config search path with every .pc file but Check's
        pc = os.path.join(cls.dir, "pc")
        os.mkdir(pc)
        for d in pkg_config_dirs():
            for f in glob.glob(os.path.join(d, "*.pc")):
                name = os.path.basename(f)
                if name != "check.pc" and not os.path.exists(
                        os.path.join(pc, name)):
                    os.symlink(f, os.path.join(pc, name))
        env = dict(os.environ, PKG_CONFIG_LIBDIR=pc, PKG_CONFIG_PATH="")
        cls.configure = subprocess.run(
            ["cmake", "-S", SRCDIR, "-B", cls.build,
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DTERN_TESTS=OFF",
             "-DCMAKE_INSTALL_PREFIX=" + cls.prefix],
            capture_output=True, text=True, timeout=600, env=env)
        if cls.configure.returncode != 0:
            return
        cls.compile = subprocess.run(
            ["cmake", "--build", cls.build, "-j2"],
            capture_output=True, text=True, timeout=1800, env=env)
        if cls.compile.returncode != 0:
            return
        cls.install = subprocess.run(
            ["cmake", "--install", cls.build], capture_output=True, text=True,
            timeout=600, env=dict(env, DESTDIR=cls.dest))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        self.assertEqual(self.configure.returncode, 0,
                         "configure without Check failed:\n" +
                         self.configure.stdout[-3000:] + self.configure.stderr[-3000:])
        self.assertEqual(self.compile.returncode, 0, self.compile.stdout[-3000:] +
                         self.compile.stderr[-3000:])
        self.assertEqual(self.install.returncode, 0, self.install.stderr[-3000:])

    def path(self, *parts):
        return os.path.join(self.dest, self.prefix.lstrip("/"), *parts)

    def test_builds_no_tests(self):
        self.assertFalse(os.path.exists(os.path.join(self.build, "tests")),
                         "TERN_TESTS=OFF built tests")

    def test_nothing_postfix_named_in_path(self):
        for d in ("bin", "sbin"):
            names = set(os.listdir(self.path(d))) if os.path.isdir(self.path(d)) else set()
            self.assertEqual(names & POSTFIX_NAMES, set(), d)
            for n in names:
                self.assertTrue(n.startswith("tern"), "%s/%s" % (d, n))
        self.assertIn("ternconf", os.listdir(self.path("sbin")))

    def test_daemons_and_compat_programs_in_libexec(self):
        libexec = self.path("libexec", "tern")
        for n in ("master", "smtpd", "qmgr", "local", "newaliases"):
            self.assertTrue(os.access(os.path.join(libexec, n), os.X_OK), n)
        if os.path.exists(os.path.join(libexec, "sendmail")):
            self.assertEqual(os.readlink(os.path.join(libexec, "mailq")), "sendmail")

    def test_man_pages_have_the_tern_suffix(self):
        man = self.path("share", "man")
        pages = glob.glob(os.path.join(man, "man*", "*"))
        self.assertIn(os.path.join(man, "man8", "master.8tern"), pages)
        self.assertIn(os.path.join(man, "man5", "aliases.5tern"), pages)
        for p in pages:
            m = re.fullmatch(r"(.+)\.([158])tern", os.path.basename(p))
            self.assertTrue(m, p)
            self.assertEqual(os.path.basename(os.path.dirname(p)), "man" + m.group(2))
            with open(p) as f:
                th = [l for l in f if l.startswith(".TH ")]
            self.assertEqual(len(th), 1, p)
            self.assertEqual(th[0].split()[1:3],
                             [m.group(1).upper(), m.group(2) + "tern"], p)

    def test_configuration_installed_for_the_prefix(self):
        # GNUInstallDirs: /opt/X -> /etc/opt/X; /usr/local -> /usr/local/etc
        conf = subprocess.run([os.path.join(self.build, "sbin", "ternconf"), "-d",
                               "config_directory"], capture_output=True,
                              text=True, timeout=60).stdout.split(" = ")[1].strip()
        etc = os.path.join(self.dest, conf.lstrip("/"))
        for n in ("main.conf", "master.conf", "aliases"):
            self.assertTrue(os.path.isfile(os.path.join(etc, n)), n)
        with open(os.path.join(etc, "main.conf")) as f:
            text = f.read()
        self.assertNotIn("@", text.replace("$", ""))
        self.assertIn("daemon_directory = %s/libexec/tern\n" % self.prefix, text)
        self.assertIn("alias_maps = lmdb:%s/aliases\n" % conf, text)

    def test_defaults_follow_the_prefix(self):
        r = subprocess.run([os.path.join(self.build, "sbin", "ternconf"), "-d",
                            "daemon_directory", "command_directory",
                            "config_directory"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MAIL_CONFIG=""))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "daemon_directory = /opt/tern-test/libexec/tern\n"
                         "command_directory = /opt/tern-test/sbin\n"
                         "config_directory = /etc/opt/tern-test/tern\n")

    def test_man_page_does_not_depend_on_the_prefix(self):
        r = subprocess.run([os.path.join(self.build, "sbin", "ternconf"), "-M"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(SRCDIR, "man", "main.conf.5")) as f:
            self.assertEqual(r.stdout, f.read())
        self.assertIn("Default: \\fB/usr/libexec/tern\\fR", r.stdout)
        self.assertNotIn("tern-test", r.stdout)


if __name__ == "__main__":
    unittest.main()
