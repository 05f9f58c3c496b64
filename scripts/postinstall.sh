#!/bin/sh
# postinstall.sh BUILD - the end of `make install` (after `cmake --install`),
# what the Debian package's postinst does for a packaged system: as root and
# without DESTDIR, create the accounts that are missing (group ternpostdrop,
# users tern, ternlogin, ternvmail), give postdrop and ternqueue their
# set-gid group, and build the alias table if there is none (a missing one
# makes local mail wait with 4.3.0). Paths come from the installed build's
# own defaults (BUILD/sbin/ternconf -d), which are the installed paths.
set -eu
build=$1
conf() { "$build/sbin/ternconf" -d "$1" | sed 's/^[^=]*= *//'; }
daemon_dir=$(conf daemon_directory)
command_dir=$(conf command_directory)
config_dir=$(conf config_directory)
group=$(conf setgid_group)

if [ -n "${DESTDIR:-}" ]; then
    echo "postinstall: DESTDIR is set: accounts, set-gid bits and the alias table are left to the package"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "postinstall: not root: create the accounts, then as root:"
    echo "    chgrp $group $daemon_dir/postdrop $command_dir/ternqueue"
    echo "    chmod 2755 $daemon_dir/postdrop $command_dir/ternqueue"
    echo "    $daemon_dir/newaliases -c $config_dir"
    exit 0
fi
getent group "$group" >/dev/null || groupadd --system "$group"
for u in tern ternlogin ternvmail; do
    getent passwd "$u" >/dev/null || useradd --system --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
done
for f in "$daemon_dir/postdrop" "$command_dir/ternqueue"; do
    [ -e "$f" ] || continue
    chgrp "$group" "$f"
    chmod 2755 "$f"
done
if [ ! -e "$config_dir/aliases.lmdb" ]; then
    "$daemon_dir/newaliases" -c "$config_dir"
fi
