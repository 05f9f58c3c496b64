#!/bin/sh
# run.sh - create ./run (once) and start master in the foreground.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
dir=$top/run
# (re)made when missing or older than the services it should have; the
# demo password is kept
if [ ! -f "$dir/etc/main.conf" ] || ! grep -q pop3-login "$dir/etc/master.conf"; then
    python3 "$top/scripts/mkinstance.py" "$dir" --build "$build" --tls \
        --smtp-port 2525 --submission-port 2587 --smtps-port 2465 \
        --pop3-port 2110 --pop3s-port 2995 >/dev/null
    echo "Created a Tern instance in $dir"
fi
cat <<MSG

Tern is starting in the foreground (Ctrl-C stops it). Config: $dir/etc
  Send a message:   swaks --server 127.0.0.1:2525 --to demo@localhost
            TLS:    swaks --server 127.0.0.1:2525 --to demo@localhost --tls
            or:     python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 2525).sendmail("me@example.org", ["demo@localhost"], "Subject: hi\r\n\r\nhello\r\n")'
            local:  echo "Subject: hi" | $build/sbin/sendmail -C $dir/etc demo@localhost
  The queue:        $build/sbin/ternqueue -c $dir/etc -p
  Read it:          ls $dir/home/demo/Maildir/new/ && cat $dir/home/demo/Maildir/new/*
  Log:              $dir/log/maillog
  Demo login:       demo (or demo@localhost), password in $dir/demo.password:
                    $(cat "$dir/demo.password" 2>/dev/null || echo "(none: remove $dir to recreate)")
                    (checked by the auth service: SMTP AUTH and POP3; IMAP once it exists)
  Read it by POP3:  python3 -c 'import poplib,ssl; p=poplib.POP3("127.0.0.1",2110); p.stls(ssl._create_unverified_context()); p.user("demo"); p.pass_(open("$dir/demo.password").read().strip()); print(p.stat()); print(b"\\n".join(p.retr(1)[1]).decode()); p.quit()'
            POP3S:  openssl s_client -quiet -connect 127.0.0.1:2995   (then USER demo, PASS ..., LIST, RETR 1, QUIT)
  Submit as demo:   swaks --server 127.0.0.1:2587 --tls --auth PLAIN --auth-user demo --auth-password "\$(cat $dir/demo.password)" --to demo@localhost
  Listening:        SMTP 127.0.0.1:2525 (STARTTLS), submission 127.0.0.1:2587 (STARTTLS, then AUTH required),
                    SMTPS 127.0.0.1:2465 (implicit TLS, AUTH required),
                    POP3 127.0.0.1:2110 (STLS, then USER/PASS or AUTH), POP3S 127.0.0.1:2995 (implicit TLS);
                    IMAP arrives with a later release

MSG
exec "$build/libexec/master" -f -c "$dir/etc"
