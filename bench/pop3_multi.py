#!/usr/bin/env python3
"""N POP3 sessions at once, each of its own user, with the shared kit's
client: one `pop3_bench.py --clients 1 --user U` per user, all started
together (bench/pop3_bench.sh's N-client phase; Tern refuses a second
session on a locked mailbox, so N sessions of one user is not its shape).

  pop3_multi.py --kit DIR --port P --server-pid PID --label L \
      --password PW USER...

Prints one JSON line in the kit's format: phase times of the slowest
client, rates over all messages and the slowest RETR phase, the server
CPU of PID's process tree around all of them (the kit's cputree), the
clients' CPU summed; "error" when a client failed or miscounted.
"""
import argparse
import json
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kit", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--label", default="")
    ap.add_argument("--password", required=True)
    ap.add_argument("users", nargs="+")
    a = ap.parse_args()
    sys.path.insert(0, a.kit)
    import cputree  # noqa: E402  (the kit's)

    cpu0 = cputree.cpu(a.server_pid) if a.server_pid else (0, 0)
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, a.kit + "/pop3_bench.py",
                               "--host", a.host, "--port", str(a.port),
                               "--user", u, "--password", a.password,
                               "--clients", "1", "--label", a.label],
                              stdout=subprocess.PIPE, text=True)
             for u in a.users]
    res = []
    for p in procs:
        out, _ = p.communicate()
        lines = out.strip().splitlines()
        if lines:
            res.append(json.loads(lines[-1]))
    wall = time.monotonic() - t0
    cpu1 = cputree.cpu(a.server_pid) if a.server_pid else (0, 0)

    out = {"label": a.label, "proto": "pop3", "clients": len(a.users),
           "users": len(a.users), "wall_s": round(wall, 3)}
    errors = []
    if len(res) != len(a.users):
        errors.append("%d of %d clients failed" % (len(a.users) - len(res),
                                                   len(a.users)))
    if res:
        for ph in ["login", "stat", "uidl", "list", "retr_all", "quit"]:
            out[ph + "_s"] = max(r[ph + "_s"] for r in res)
        out["n"] = res[0]["n"]
        msgs = sum(r["n"] for r in res)
        mb = sum(r["retr_mb"] for r in res)
        out["retr_mb"] = round(mb, 2)
        out["retr_msg_s"] = round(msgs / out["retr_all_s"], 1)
        out["retr_mb_s"] = round(mb / out["retr_all_s"], 1)
        out["client_cpu_s"] = round(sum(r["client_cpu_s"] for r in res), 2)
        errors += [r["error"] for r in res if "error" in r]
        if any(r["n"] != out["n"] for r in res):
            errors.append("mailboxes differ in size")
    out["server_cpu_s"] = round(cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1], 2)
    if errors:
        out["error"] = "; ".join(errors)
    print(json.dumps(out), flush=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
