#!/usr/bin/env python3
"""idle_memory - what N idle SMTP connections cost smtpd in memory.

    bench/idle_memory.py [--conns 10000] [--build DIR]

Starts a throw-away Tern instance (tests/integration/ternlab.py, loopback
only), opens N connections in batches, and reads the sum of VmRSS and
VmData over every smtpd process at three points:
  base   one connection was served (the instance's start-up probe)
  greet  N connections that each read the 220 greeting, then sit idle
  ehlo   the same N after each sent EHLO and read the reply
Prints one result line per point plus the per-connection increment:
(point minus procs times the base process), divided by N. Bounded: gives up after --timeout
seconds; the instance is stopped (and removed) at the end whatever
happens. Needs about N+100 descriptors (raised up to the hard limit).
"""
import argparse
import os
import resource
import selectors
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import ternlab  # noqa: E402

BATCH = 200


def proc_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def smtpd_memory(inst):
    pids = inst.child_pids("smtpd")
    return (len(pids), sum(proc_kb(p, "VmRSS") for p in pids),
            sum(proc_kb(p, "VmData") for p in pids))


def wait_lines(socks, prefix, deadline):
    """Read from every socket until each has a full reply line starting
    with prefix (multi-line replies: until the last line)."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    pending = set(socks)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for %r replies (%d left)"
                             % (prefix, len(pending)))
        for key, _ in sel.select(1.0):
            s = key.fileobj
            d = s.recv(4096)
            if not d:
                raise SystemExit("connection closed: %r" % bufs[s])
            bufs[s] += d
            lines = bufs[s].split(b"\r\n")
            done = [l for l in lines[:-1] if l[3:4] == b" "]
            if done:
                if not done[-1].startswith(prefix):
                    raise SystemExit("unexpected reply %r" % done[-1])
                sel.unregister(s)
                pending.discard(s)
    sel.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--build", default=None,
                    help="build directory (default: $TERN_BUILD or ./build)")
    ap.add_argument("--client-limit", type=int, default=1000,
                    help="smtpd_client_limit of the instance")
    args = ap.parse_args()
    if args.build:
        ternlab.BUILD = os.path.abspath(args.build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.conns + 200
    if hard < need:
        raise SystemExit("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    # master and its children inherit this
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    deadline = time.monotonic() + args.timeout
    inst = ternlab.Instance(main={
        "smtpd_client_limit": str(args.client_limit),
        "default_process_limit": "100",
        "smtpd_timeout": "3600s",
        "max_idle": "3600s",
        "max_use": "1000000",
    })
    socks = []
    try:
        inst.start()
        ternlab.wait_for(lambda: inst.child_pids("smtpd"), what="smtpd")
        base = smtpd_memory(inst)
        while len(socks) < args.conns:
            batch = []
            for _ in range(min(BATCH, args.conns - len(socks))):
                s = socket.create_connection(("127.0.0.1", inst.smtp_port),
                                             30)
                batch.append(s)
            wait_lines(batch, b"220", deadline)
            socks += batch
        greet = smtpd_memory(inst)
        for i in range(0, len(socks), BATCH):
            batch = socks[i:i + BATCH]
            for s in batch:
                s.setblocking(True)
                s.sendall(b"EHLO client.test\r\n")
            wait_lines(batch, b"250", deadline)
        ehlo = smtpd_memory(inst)
    finally:
        for s in socks:
            s.close()
        inst.cleanup()
    n = args.conns
    print("build: %s" % ternlab.BUILD)
    print("%-6s %6s %6s %12s %12s %14s %14s"
          % ("point", "conns", "procs", "VmRSS KiB", "VmData KiB",
             "RSS/conn B", "Data/conn B"))
    for name, conns, (procs, rss, data) in (("base", 1, base),
                                            ("greet", n, greet),
                                            ("ehlo", n, ehlo)):
        # what a fresh process costs is not the connections' doing
        per_rss = ((rss - procs * base[1] / base[0]) * 1024 / n
                   if conns > 1 else 0)
        per_data = ((data - procs * base[2] / base[0]) * 1024 / n
                    if conns > 1 else 0)
        print("%-6s %6d %6d %12d %12d %14.0f %14.0f"
              % (name, conns, procs, rss, data, per_rss, per_data))


if __name__ == "__main__":
    main()
