#!/bin/sh
# layers.sh SRCDIR - lib/ dependencies point one way: lib/util includes
# nothing from lib/mail (or any later layer), and nothing in lib/ includes
# a daemon's header. Fails listing the offending lines.
set -u
src=${1:-.}
bad=$(grep -n '#include "\(mail\|mime\|imap\)/' "$src"/lib/util/*.[ch] 2>/dev/null)
bad="$bad$(grep -n '#include "\(master\|smtpd\|qmgr\|local\)/' "$src"/lib/*/*.[ch] 2>/dev/null)"
if [ -n "$bad" ]; then
    echo "layer violation:"; echo "$bad"; exit 1
fi
echo "layers: ok"
