#!/usr/bin/env python3
"""Benchmark helpers for scripts/bench.sh (standard library only).

  measure.py runs N CMD...         run CMD N times; print median wall and CPU seconds
  measure.py wrk FILE...           print "p50_ms p99_ms req_per_s non2xx" from wrk --latency output
                                   (several files: the median of each figure, non2xx summed)
  measure.py port                  print a free loopback port
  measure.py fsync SECONDS FILE [BUSY]  time 4 KiB overwrites + fdatasync of FILE for SECONDS
                                   (prints median ms, p99 ms, fsyncs over 5 ms per s, their median, fsyncs per s)
                                   while BUSY processes spin (default 0); print "p50_ms p99_ms
                                   slow_per_s slow_median_ms" (slow: over 5 ms)
  measure.py settle FILE           return once such fsyncs of FILE have all taken under 10 ms
                                   for 5 s in a row (fail after 300 s)
  measure.py table RESULTS [--check]  print the results table; --check fails on a missing number
"""
import os, re, socket, statistics, subprocess, sys, time


def runs(n, cmd):
    walls, cpus = [], []
    for _ in range(n):
        t = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        walls.append(time.monotonic() - t)
        cpus.append(ru.ru_utime + ru.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"measure: {cmd} failed")
    print(f"{statistics.median(walls):.4f} {statistics.median(cpus):.4f}")


def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk_figures(path):
    text = open(path).read()
    lat = dict((p, ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if not rps or "50" not in lat or "99" not in lat:
        sys.exit(f"measure: cannot read wrk output {path}")
    return lat["50"], lat["99"], float(rps.group(1)), int(bad.group(1)) if bad else 0


def wrk(paths):
    runs = [wrk_figures(p) for p in paths]
    p50, p99, rps = (statistics.median(r[i] for r in runs) for i in range(3))
    print(f"{p50:.4f} {p99:.4f} {rps:.1f} {sum(r[3] for r in runs)}")


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def fsync_ms(fd, offset):
    """Overwrites 4 KiB at `offset` and times the fdatasync, in ms."""
    os.pwrite(fd, b"x" * 4096, offset)
    t = time.perf_counter()
    os.fdatasync(fd)
    return (time.perf_counter() - t) * 1000


def fsync(seconds, path, busy):
    """The disk as every fsync-per-commit writer sees it; BUSY spinning
    processes stand in for the load (wrk, the server) during a benchmark."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.pwrite(fd, b"\0" * (1 << 20), 0)
        os.fsync(fd)
        lat, off, end = [], 0, time.monotonic() + seconds
        while time.monotonic() < end:
            lat.append(fsync_ms(fd, off))
            off = (off + 4096) % (1 << 20)
        os.close(fd)
        os.unlink(path)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    lat.sort()
    slow = [x for x in lat if x > 5]
    typical = statistics.median(slow) if slow else 0
    rate = len(lat) / seconds
    print(f"{lat[len(lat) // 2]:.4f} {lat[int(len(lat) * 0.99)]:.4f} {len(slow) / seconds:.1f} {typical:.2f} {rate:.1f}")


def settle(path):
    """Deleting gigabytes on a disk mounted with `discard` keeps it busy for
    seconds after `sync`: a step that fsyncs must not pay for the step before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    start = quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 5:
        if time.monotonic() - start > 300:
            sys.exit("bench: the disk never became quiet")
        if fsync_ms(fd, 0) >= 10:
            quiet_since = time.monotonic()
        time.sleep(0.005)
    os.close(fd)
    os.unlink(path)


def table(path, check):
    """RESULTS lines: `measure | caretaker | peer | target ratio or -` (values may be NA)."""
    rows, missing = [], []
    for line in open(path):
        name, ours, peer, kind, target = [f.strip() for f in line.rstrip("\n").split("|")]
        for v in (ours, peer):
            if v != "-":
                try:
                    float(v)
                except ValueError:
                    missing.append(f"{name}: {v!r}")
        ratio = "-"
        if kind in ("lower", "higher") and ours not in ("-", "NA") and peer not in ("-", "NA") and float(peer) > 0:
            r = float(ours) / float(peer)
            ratio = f"{r:.3f}" if r < 10 else f"{r:.1f}"
        rows.append(f"| {name} | {ours} | {peer} | {ratio} | {target} |")
    print("| measurement | caretaker | peer | ratio | target |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    if check and missing:
        sys.exit("bench: measurements without a number: " + ", ".join(missing))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "runs":
        runs(int(a[1]), a[2:])
    elif a[0] == "wrk":
        wrk(a[1:])
    elif a[0] == "port":
        port()
    elif a[0] == "fsync":
        fsync(float(a[1]), a[2], int(a[3]) if len(a) > 3 else 0)
    elif a[0] == "settle":
        settle(a[1])
    elif a[0] == "table":
        table(a[1], "--check" in a)
