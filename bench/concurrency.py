#!/usr/bin/env python3
"""concurrency - 10,000 concurrent SMTP sessions against one Tern.

    bench/concurrency.py [--sessions 10000] [--client-limit 1000]
                         [--only idle|send] [--build DIR] [--timeout 1800]

Starts a throw-away Tern instance (tests/integration/ternlab.py, loopback
only, virtual user demo) with the limits out of the way:
smtpd_client_limit = --client-limit per smtpd process,
default_process_limit = 1000, no per-client connection count or rate
limit (anvil), smtpd_timeout and max_idle 3600 s, max_use 1000000.
Everything else is the default (event_server_process_min included).

(a) idle: opens --sessions connections (in batches of 200: the listen
    queue is finite), each reads the 220 greeting and sends EHLO, then
    they all sit idle; prints the total VmRSS of Tern's processes (master
    and every descendant) before and with the sessions open, per process
    name, and the increment per session.
(b) send: --sessions new connections, all open at once (connected and
    greeted in batches of 200), then every one of them sends one message
    at the same time (EHLO, MAIL, RCPT, DATA, QUIT; one recipient,
    demo@localhost, a Message-Id of this run's own); waits until as many
    files are in demo's Maildir/new and checks them by Message-Id: none
    lost, none duplicated. Prints the time from the first DATA to the last
    250 and to the last delivery (strongly machine-dependent: compare
    only within one run).

Raises RLIMIT_NOFILE to its hard limit (master and its children inherit
it); needs about --sessions + 200 descriptors. Exit status 1 when a
session failed or a message was lost or duplicated.
"""
import argparse
import asyncio
import collections
import os
import resource
import socket
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import ternlab  # noqa: E402
from idle_memory import proc_kb, wait_lines  # noqa: E402

BATCH = 200


def tree(pid):
    """pid and all its descendants"""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += ternlab.proc_children(p)
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def tern_rss(inst):
    """{process name: (processes, VmRSS KiB)} over master's tree"""
    by = collections.defaultdict(lambda: [0, 0])
    for p in tree(inst.master_pid):
        try:
            kb = proc_kb(p, "VmRSS")
        except OSError:
            continue
        by[comm(p)][0] += 1
        by[comm(p)][1] += kb
    return {k: tuple(v) for k, v in by.items()}


def print_rss(title, rss):
    total = sum(v[1] for v in rss.values())
    print("  %-10s total %8d KiB (%.1f MiB): %s" % (
        title, total, total / 1024, ", ".join(
            "%s %dx %d KiB" % (k, v[0], v[1])
            for k, v in sorted(rss.items(), key=lambda kv: -kv[1][1]))))
    return total


def open_sessions(port, n, deadline, ehlo):
    """n connections that read the greeting (and, with ehlo, sent EHLO
    and read its reply), connected in batches"""
    socks = []
    while len(socks) < n:
        batch = [socket.create_connection(("127.0.0.1", port), 60)
                 for _ in range(min(BATCH, n - len(socks)))]
        wait_lines(batch, b"220", deadline)
        if ehlo:
            for s in batch:
                s.setblocking(True)
                s.sendall(b"EHLO client.test\r\n")
            wait_lines(batch, b"250", deadline)
        socks += batch
    return socks


def idle(inst, n, deadline):
    print("(a) %d idle sessions (after EHLO)" % n)
    before = tern_rss(inst)
    t0 = time.monotonic()
    socks = open_sessions(inst.smtp_port, n, deadline, ehlo=True)
    t1 = time.monotonic()
    held = tern_rss(inst)
    try:
        b = print_rss("before", before)
        h = print_rss("held", held)
        print("  %d sessions opened in %.1f s; total RSS %.1f MiB, "
              "%.0f B per session over before"
              % (n, t1 - t0, h / 1024, (h - b) * 1024 / n))
    finally:
        for s in socks:
            s.close()
    return h


async def one_message(reader, writer, mid, go, stats):
    """wait for go, then one transaction; replies checked"""
    async def reply(code):
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed waiting for %s" % code)
            if line[3:4] != b"-":
                if not line.startswith(code):
                    raise ConnectionError("%r for %s" % (line.strip(), code))
                return
    await go.wait()
    writer.write(b"MAIL FROM:<bench@client.test>\r\n")
    await reply(b"250")
    writer.write(b"RCPT TO:<demo@localhost>\r\n")
    await reply(b"250")
    writer.write(b"DATA\r\n")
    await reply(b"354")
    writer.write(b"From: bench@client.test\r\nTo: demo@localhost\r\n"
                 b"Subject: concurrency\r\nMessage-Id: <" + mid + b">\r\n"
                 b"\r\n" + b"x" * 70 + b"\r\n.\r\n")
    await reply(b"250")
    stats["last_250"] = time.monotonic()
    stats["accepted"] += 1
    writer.write(b"QUIT\r\n")
    try:
        await reply(b"221")
    except ConnectionError:
        pass
    writer.close()


async def send_all(port, n, mids, timeout):
    stats = {"accepted": 0, "errors": [], "last_250": None}
    go = asyncio.Event()
    conns = []
    sem = asyncio.Semaphore(BATCH)

    async def connect():
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port,
                                                 limit=1 << 16)
            line = await r.readline()
            while line[3:4] == b"-":
                line = await r.readline()
            if not line.startswith(b"220"):
                raise ConnectionError("greeting %r" % line)
            w.write(b"EHLO client.test\r\n")
            line = await r.readline()
            while line[3:4] == b"-":
                line = await r.readline()
            if not line.startswith(b"250"):
                raise ConnectionError("EHLO %r" % line)
            return r, w
    results = await asyncio.wait_for(
        asyncio.gather(*(connect() for _ in range(n)),
                       return_exceptions=True), timeout)
    for res in results:
        if isinstance(res, BaseException):
            stats["errors"].append("connect: %r" % res)
        else:
            conns.append(res)
    tasks = [asyncio.ensure_future(one_message(r, w, mids[i], go, stats))
             for i, (r, w) in enumerate(conns)]
    t0 = time.monotonic()
    go.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks,
                                                 return_exceptions=True),
                                  timeout)
    for res in done:
        if isinstance(res, BaseException):
            stats["errors"].append("session: %r" % res)
    stats["t0"] = t0
    return stats


def message_ids(newdir):
    ids = collections.Counter()
    for name in os.listdir(newdir):
        try:
            with open(os.path.join(newdir, name), "rb") as f:
                head = f.read(8192)
        except OSError:
            continue
        for line in head.split(b"\n"):
            if not line.strip():
                break
            if line[:11].lower() == b"message-id:":
                ids[line[11:].strip().strip(b"<>")] += 1
                break
    return ids


def send(inst, n, timeout):
    print("(b) %d sessions sending one message each, concurrently" % n)
    newdir = os.path.join(inst.maildir("demo"), "new")
    tag = uuid.uuid4().hex[:12]
    mids = [b"%s.%05d@concurrency.test" % (tag.encode(), i)
            for i in range(n)]
    stats = asyncio.run(send_all(inst.smtp_port, n, mids, timeout))
    for e in stats["errors"][:10]:
        print("  error:", e)
    want = set(mids)

    def ours():
        try:
            names = os.listdir(newdir)
        except FileNotFoundError:
            return 0
        return len(names)
    deadline = time.monotonic() + timeout
    while ours() < stats["accepted"] and time.monotonic() < deadline:
        time.sleep(0.1)
    t_done = time.monotonic()
    inst.wait_queue_empty(timeout)
    ids = message_ids(newdir)
    got = {m for m in ids if m in want}
    dups = sum(c - 1 for m, c in ids.items() if m in want and c > 1)
    lost = stats["accepted"] - len(got)
    t0 = stats["t0"]
    print("  %d of %d sessions got 250 after DATA, %d errors"
          % (stats["accepted"], n, len(stats["errors"])))
    if stats["last_250"]:
        print("  first MAIL -> last 250: %.1f s; -> last file in new/: %.1f s"
              % (stats["last_250"] - t0, t_done - t0))
    print("  delivered: %d distinct Message-Ids of this run, %d duplicate "
          "files, %d lost (accepted but not delivered), %d not accepted"
          % (len(got), dups, lost, n - stats["accepted"]))
    return not stats["errors"] and dups == 0 and lost == 0 \
        and stats["accepted"] == n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--client-limit", type=int, default=1000,
                    help="smtpd_client_limit of the instance")
    ap.add_argument("--only", choices=("idle", "send"))
    ap.add_argument("--build", default=None,
                    help="build directory (default: $TERN_BUILD or ./build)")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args()
    if a.build:
        ternlab.BUILD = os.path.abspath(a.build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < a.sessions + 200:
        raise SystemExit("RLIMIT_NOFILE hard limit %d < %d"
                         % (hard, a.sessions + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    inst = ternlab.Instance(main={
        "smtpd_client_limit": str(a.client_limit),
        "default_process_limit": "1000",
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
        "smtpd_timeout": "3600s",
        "max_idle": "3600s",
        "max_use": "1000000",
    })
    ok = True
    try:
        inst.start()
        print("build: %s; %d sessions, smtpd_client_limit %d"
              % (ternlab.BUILD, a.sessions, a.client_limit))
        if a.only in (None, "idle"):
            idle(inst, a.sessions, time.monotonic() + a.timeout)
        if a.only in (None, "send"):
            ok = send(inst, a.sessions, a.timeout)
    finally:
        inst.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
