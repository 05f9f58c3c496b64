#!/bin/sh
# deps.sh build|install|deb|test|fuzz - install the Debian packages Tern
# needs, if missing.
# Install (`make install`: no tests, so no Check): compiler, CMake, OpenSSL
# (+ the openssl command: mkinstance makes the instance's certificate),
# PCRE2, LMDB, libunbound (DNS). Build: + Check (the unit tests). Deb
# (`make deb`): install's + debhelper, dpkg-dev, fakeroot and git (the tree
# is copied by `git ls-files`). Test: build's +
# swaks with TLS (Net::SSLeay), msmtp (SMTP AUTH), strace (the
# durability-order test), dnsmasq-base (the client-name tests run their
# own DNS server; -base is the binary without the system service) and
# clang (every fuzz harness is run briefly), postfix (only for its
# smtp-sink test server, tests/integration/test_smtp_sink.py: installed
# with debconf's "No configuration", so no main.cf exists and no system
# Postfix is started or left listening; see below), pflogsumm (the log
# format test, tests/integration/test_pflogsumm.py), bsd-mailx and s-nail
# (mail user agents sending through Tern's sendmail,
# tests/integration/test_sendmail.py), and deb's packages
# (tests/integration/test_package.py builds the package), fetchmail and
# getmail6 (POP3 clients retrieving delivered mail,
# tests/integration/test_pop3_clients.py).
# Fuzz: + clang.
set -eu
INSTALL_PKGS="gcc make cmake pkg-config libssl-dev openssl libpcre2-dev liblmdb-dev libunbound-dev python3"
BUILD_PKGS="$INSTALL_PKGS check"
DEB_PKGS="debhelper dpkg-dev fakeroot git"
FUZZ_PKGS="clang libclang-rt-14-dev"
TEST_PKGS="swaks libnet-ssleay-perl msmtp strace dnsmasq-base postfix $FUZZ_PKGS pflogsumm bsd-mailx s-nail fetchmail getmail6 $DEB_PKGS"
want="$BUILD_PKGS"
case "${1:-build}" in
    test) want="$want $TEST_PKGS" ;;
    fuzz) want="$want $FUZZ_PKGS" ;;
    install) want="$INSTALL_PKGS" ;;
    deb) want="$INSTALL_PKGS $DEB_PKGS" ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages:$missing; install them as root (apt-get install$missing)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
case " $missing " in
    *" postfix "*)
        # smtp-sink only: no system mail service from this package
        echo "postfix postfix/main_mailer_type select No configuration" \
            | $SUDO debconf-set-selections ;;
esac
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
case " $missing " in
    *" postfix "*)
        # "No configuration" leaves no main.cf, so the service cannot
        # start; make sure of it (a system Postfix on port 25 would take
        # mail meant for the tests' own servers)
        if command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl disable --now postfix >/dev/null 2>&1 || true
        fi
        if [ -e /etc/postfix/main.cf ]; then
            echo "deps: /etc/postfix/main.cf exists: check that no system postfix runs" >&2
        fi ;;
esac
