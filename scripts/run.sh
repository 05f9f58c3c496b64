#!/bin/sh
# run.sh - create ./run (once) and start master in the foreground.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
dir=$top/run
if [ ! -f "$dir/etc/main.conf" ]; then
    python3 "$top/scripts/mkinstance.py" "$dir" --build "$build" --tls \
        --smtp-port 2525 --submission-port 2587 --smtps-port 2465 >/dev/null
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
                    (checked by the auth service: SMTP AUTH now, POP3 and IMAP once they exist)
  Submit as demo:   swaks --server 127.0.0.1:2587 --tls --auth PLAIN --auth-user demo --auth-password "\$(cat $dir/demo.password)" --to demo@localhost
  Listening:        SMTP 127.0.0.1:2525 (STARTTLS), submission 127.0.0.1:2587 (STARTTLS, then AUTH required),
                    SMTPS 127.0.0.1:2465 (implicit TLS, AUTH required); POP3 and IMAP arrive with later releases

MSG
exec "$build/libexec/master" -f -c "$dir/etc"
