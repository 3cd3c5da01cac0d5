"""APPEND to Dovecot -> receipt at the SMTP server, with a worker waiting in IDLE.

    .venv/bin/python benchmarks/latency.py [--mails 50] [--backlog 1000]

Starts the same real servers the tests use (Dovecot, aiosmtpd), a SQLite
database with the sample desk, and one in-process worker. Prints the median
and p95 latency over `--mails` requests appended one at a time, then how many
mails per second a backlog appended while the worker was stopped is answered
at (both replies, receipt and result, at the SMTP server). The physical
baseline in the same run: a bare APPEND round trip, a bare SMTP delivery, and
how long Dovecot takes to wake a bare IDLE client after an APPEND (it batches
notifications for about half a second), so the numbers say how much is ours.
"""

from __future__ import annotations

import argparse
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kundo_gdpr import db  # noqa: E402
from kundo_gdpr.desk.seed import seed_demo  # noqa: E402
from kundo_gdpr.stages.driver import Worker  # noqa: E402
from tests.servers import Dovecot, SmtpServer, dovecot_binary, free_port  # noqa: E402
from tests.test_imap_smtp import erase_mail, make_config, make_worker  # noqa: E402


def receipts_for(smtp: SmtpServer, message_id: str) -> int:
    # Raw bytes, not parsed mail: the check runs every few ms and must not
    # take the CPU the worker is being measured on.
    header = b"In-Reply-To: " + message_id.encode()
    return sum(1 for r in list(smtp.received) if header in r.raw)


def answered(smtp: SmtpServer) -> int:
    """Requests with both their receipt and their result at the SMTP server."""
    received = list(smtp.received)
    receipts = sum(1 for r in received if b".receipt@" in r.raw)
    results = sum(1 for r in received if b".done@" in r.raw)
    return min(receipts, results)


def wait_until(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def start_worker(worker: Worker) -> threading.Thread:
    worker.stop.clear()
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    return thread


def idle_wake(imap: Dovecot, raw: bytes, times: int = 10) -> float:
    """Median time from APPEND until a bare IMAPClient in IDLE hears EXISTS:
    the floor for any IDLE-driven worker (Dovecot batches notifications)."""
    waits: list[float] = []
    with imap.client() as watcher, imap.client() as writer:
        watcher.select_folder("Baseline")
        for _ in range(times):
            watcher.idle()
            started = time.perf_counter()
            writer.append("Baseline", raw)
            while not any(r[1:2] == (b"EXISTS",) for r in watcher.idle_check(timeout=5)):
                pass
            waits.append(time.perf_counter() - started)
            watcher.idle_done()
    return statistics.median(waits)


def baseline(imap: Dovecot, smtp: SmtpServer) -> tuple[float, float, float]:
    raw = erase_mail(10**6)
    with imap.client() as client:
        client.create_folder("Baseline")
        started = time.perf_counter()
        for _ in range(20):
            client.append("Baseline", raw)
        append = (time.perf_counter() - started) / 20
    wake = idle_wake(imap, raw)
    started = time.perf_counter()
    for _ in range(20):
        with smtplib.SMTP(smtp.host, smtp.port) as conn:
            conn.sendmail("a@example.com", ["b@example.com"], raw)
    send = (time.perf_counter() - started) / 20
    smtp.received.clear()
    return append, send, wake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=1000)
    args = parser.parse_args()
    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("dovecot not found (apt-get install dovecot-imapd)")
    base = Path(tempfile.mkdtemp(prefix="kundo-bench-"))
    base.chmod(0o755)
    imap = Dovecot(binary=binary, base=base / "dovecot", port=free_port())
    imap.base.mkdir()
    imap.base.chmod(0o755)
    imap.write_config()
    imap.start()
    smtp = SmtpServer(port=free_port())
    smtp.start()
    try:
        run(args, base, imap, smtp)
    finally:
        smtp.stop()
        imap.stop()
        shutil.rmtree(base, ignore_errors=True)


def run(args: argparse.Namespace, base: Path, imap: Dovecot, smtp: SmtpServer) -> None:
    append_s, send_s, wake_s = baseline(imap, smtp)
    print(
        f"baseline: APPEND {append_s * 1000:.1f} ms, SMTP delivery {send_s * 1000:.1f} ms, "
        f"APPEND -> IDLE wake-up (median) {wake_s * 1000:.0f} ms"
    )
    engine = db.make_engine(f"sqlite:///{base / 'imap.sqlite3'}")
    db.upgrade(engine)
    with db.session_factory(engine).begin() as session:
        seed_demo(session)
    worker = make_worker(make_config(base, imap, smtp), engine, imap)

    thread = start_worker(worker)
    time.sleep(1.0)  # settled into IDLE
    latencies: list[float] = []
    for n in range(args.mails):
        message_id = f"<erase-{n}@cykelbolaget.se>"
        appended = time.perf_counter()
        imap.append(erase_mail(n))
        if not wait_until(lambda mid=message_id: receipts_for(smtp, mid) >= 1, 30):
            raise SystemExit(f"no receipt for mail {n} within 30 s")
        latencies.append(time.perf_counter() - appended)
    worker.stop.set()
    thread.join()
    latencies.sort()
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    median = statistics.median(latencies)
    print(
        f"latency over {len(latencies)} mails: median {median:.3f} s, "
        f"p95 {p95:.3f} s (goal: median < 2 s); "
        f"median / bare IDLE wake-up = {median / wake_s:.2f}x"
    )

    smtp.received.clear()
    first = args.mails
    with imap.client() as client:
        for n in range(first, first + args.backlog):
            client.append("INBOX", erase_mail(n))
    started = time.perf_counter()
    thread = start_worker(worker)
    ok = wait_until(lambda: answered(smtp) >= args.backlog, max(60.0, args.backlog * 2.0))
    elapsed = time.perf_counter() - started
    worker.stop.set()
    thread.join()
    done = answered(smtp)
    print(
        f"backlog: {done}/{args.backlog} answered (receipt and result) in {elapsed:.1f} s, "
        f"{done / elapsed:.1f} mails/s{'' if ok else ' (timed out)'}"
    )


if __name__ == "__main__":
    main()
