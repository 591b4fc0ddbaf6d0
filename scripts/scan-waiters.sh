#!/usr/bin/env bash
# Benchmark (D1): memory and CPU of the server while N browsers wait on the
# scan-to-login page with an open Server-Sent Events stream each. Release
# build, SQLite, loopback only. Not part of the test run. Usage:
#   bash scripts/scan-waiters.sh [waiters=10000] [idle-seconds=30]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
IDLE=${2:-30}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p idp
BIN=${CARGO_TARGET_DIR:-target}/release/idp
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export IDP_DATA_DIR=$WORK IDP_ISSUER=http://127.0.0.1:$PORT IDP_LISTEN=127.0.0.1:$PORT IDP_LOG=warn
"$BIN" serve & PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

python3 - "$PORT" "$N" "$IDLE" "$PID" <<'PY'
import asyncio, re, sys, time, os
port, n, idle, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
TICK = os.sysconf("SC_CLK_TCK")

def status_mib(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
def rss_mib():
    return status_mib("VmRSS")
def split():
    # Heap and stacks vs. the binary's pages (the latter depend on the page cache).
    return f"anon {status_mib('RssAnon'):.1f} MiB + file {status_mib('RssFile'):.1f} MiB"
def cpu_secs():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK
def threads():
    return len(os.listdir(f"/proc/{pid}/task"))

async def request(path, cookie=None):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    w.write((head + "\r\n").encode())
    data = await r.read()
    w.close()
    return data.decode("utf-8", "replace")

async def new_ticket(sem):
    async with sem:
        page = await request("/login/scan")
        cookie = re.search(r"set-cookie: (idp_browser=[^;]+)", page, re.I).group(1)
        ticket = re.search(r'data-ticket="([^"]+)"', page).group(1)
        return cookie, ticket

async def wait_on(cookie, ticket, sem, ready):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET /scan/events?t={ticket} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
        buf = b""
        while b'"pending"' not in buf:
            chunk = await r.read(4096)
            if not chunk:
                raise RuntimeError("stream closed: " + buf.decode("utf-8", "replace")[:200])
            buf += chunk
    ready.append((r, w))

async def main():
    base_rss, base_split = rss_mib(), split()
    t0 = time.time()
    sem = asyncio.Semaphore(32)
    browsers = await asyncio.gather(*(new_ticket(sem) for _ in range(n)))
    t1 = time.time()
    rss_tickets = rss_mib()
    print(f"{n} scan tickets created (GET /login/scan): {t1 - t0:.1f} s, {n / (t1 - t0):.0f}/s; RSS {rss_tickets:.1f} MiB")
    ready = []
    sem = asyncio.Semaphore(256)
    await asyncio.gather(*(wait_on(c, t, sem, ready) for c, t in browsers))
    t2 = time.time()
    print(f"{len(ready)} browsers waiting on SSE streams (opened in {t2 - t1:.1f} s)")
    rss_wait, wait_split = rss_mib(), split()
    c0 = cpu_secs()
    await asyncio.sleep(idle)
    c1 = cpu_secs()
    rss_end = rss_mib()
    alive = sum(1 for r, _ in ready if not r.at_eof())
    per_waiter = (rss_end - rss_tickets) * 1024 / max(len(ready), 1)
    print(f"server RSS idle (started, nothing waiting): {base_rss:.1f} MiB ({base_split})")
    print(f"server RSS with {len(ready)} waiters: {rss_wait:.1f} MiB ({wait_split}); "
          f"{rss_end:.1f} MiB after {idle} s; {per_waiter:.1f} KiB per waiter")
    print(f"server CPU while {alive} browsers waited {idle} s: {c1 - c0:.2f} s "
          f"({100 * (c1 - c0) / idle:.2f} % of one core); server threads: {threads()}")
    for _, w in ready:
        w.close()

asyncio.run(main())
PY
