"""ternconf: defaults, effective values, -n, -M against man/main.conf.5,
error handling. Runs $TERN_BUILD/sbin/ternconf against temp config dirs."""
import os
import shutil
import subprocess
import tempfile
import unittest

SRCDIR = os.environ.get("TERN_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TERN_BUILD") or os.path.join(SRCDIR, "build")
TERNCONF = os.path.join(BUILD, "sbin", "ternconf")


class TernconfTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ternconf-test.")
        self.addCleanup(shutil.rmtree, self.dir)

    def write_main(self, text):
        with open(os.path.join(self.dir, "main.conf"), "w") as f:
            f.write(text)

    def run_conf(self, *args, env=None):
        e = dict(os.environ)
        e.pop("MAIL_CONFIG", None)
        e.update(env or {})
        return subprocess.run([TERNCONF] + list(args), capture_output=True,
                              text=True, timeout=60, env=e)

    def params(self, out):
        d = {}
        for line in out.splitlines():
            name, sep, value = line.partition(" =")
            self.assertTrue(sep, "bad output line %r" % line)
            d[name] = value[1:] if value.startswith(" ") else value
        return d

    def test_defaults(self):
        r = self.run_conf("-d")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("message_size_limit = 10240000\n", r.stdout)
        p = self.params(r.stdout)
        self.assertEqual(p["mydestination"].split(", ")[1:],
                         ["localhost." + p["mydomain"], "localhost"])
        self.assertEqual(p["relayhost"], "")
        names = [line.split(" =")[0] for line in r.stdout.splitlines()]
        self.assertEqual(names, sorted(names))
        self.assertGreaterEqual(len(names), 49)

    def test_defaults_ignore_broken_main_conf(self):
        self.write_main("max_use = lots\n")
        r = self.run_conf("-c", self.dir, "-d", "max_use")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "max_use = 100\n")

    def test_nondefault_and_expansion(self):
        self.write_main("myhostname = mx.example.org\nmydomain = example.org\n")
        r = self.run_conf("-c", self.dir, "-n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "mydomain = example.org\n"
                                   "myhostname = mx.example.org\n")
        r = self.run_conf("-c", self.dir, "mydestination")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "mydestination = mx.example.org, "
                                   "localhost.example.org, localhost\n")

    def test_mail_config_env(self):
        self.write_main("mail_name = FromEnv\n")
        r = self.run_conf("mail_name", "config_directory",
                          env={"MAIL_CONFIG": self.dir})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "mail_name = FromEnv\n"
                                   "config_directory = %s\n" % self.dir)

    def test_n_shows_value_as_written(self):
        self.write_main("myorigin = $mydomain\nsmtpd_banner = a\n  b\n")
        r = self.run_conf("-c", self.dir, "-n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "myorigin = $mydomain\nsmtpd_banner = a b\n")

    def test_all_effective(self):
        self.write_main("message_size_limit = 5m\n")
        r = self.run_conf("-c", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = self.params(r.stdout)
        self.assertEqual(p["message_size_limit"], "5m")
        self.assertEqual(p["config_directory"], self.dir)
        self.assertEqual(p["alias_maps"], "lmdb:%s/aliases" % self.dir)

    def test_unknown_name(self):
        r = self.run_conf("-c", self.dir, "mail_name", "no_such_parameter")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "mail_name = Tern\n")
        self.assertIn("ternconf: warning: unknown parameter: no_such_parameter",
                      r.stderr)

    def test_unknown_in_file_warns_with_line(self):
        self.write_main("# comment\nmail_name = X\nbogus_thing = 1\n")
        r = self.run_conf("-c", self.dir, "mail_name")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "mail_name = X\n")
        self.assertIn("main.conf:3: unknown parameter: bogus_thing", r.stderr)

    def test_bad_value_is_fatal(self):
        self.write_main("\nsmtpd_timeout = forever\n")
        r = self.run_conf("-c", self.dir)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "")
        self.assertIn("main.conf:2: bad value for smtpd_timeout", r.stderr)

    def test_missing_config_dir(self):
        r = self.run_conf("-c", os.path.join(self.dir, "nonexistent"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nonexistent", r.stderr)

    def test_bad_option(self):
        r = self.run_conf("-x")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("usage:", r.stderr)

    def test_man_page_is_current(self):
        r = self.run_conf("-M")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(SRCDIR, "man", "main.conf.5")) as f:
            committed = f.read()
        self.assertEqual(r.stdout, committed,
                         "man/main.conf.5 is stale: regenerate it with "
                         "`ternconf -M > man/main.conf.5`")
        for p in ("message_size_limit", "mydestination", "smtpd_banner"):
            self.assertIn(".B %s\n" % p.replace("-", "\\-"), r.stdout)
        for section in (".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION",
                        ".SH SEE ALSO"):
            self.assertIn(section, r.stdout)


if __name__ == "__main__":
    unittest.main()
