"""APPEND to Dovecot -> receipt at the SMTP server, with a worker waiting in IDLE.

    .venv/bin/python benchmarks/latency.py [--mails 50] [--backlog 1000]

Starts the same real servers the tests use (Dovecot, aiosmtpd), a SQLite
database with the sample desk, and one in-process worker. Prints the median
and p95 latency over `--mails` requests appended one at a time, then how many
mails per second a backlog appended while the worker was stopped is answered
at. The physical baseline in the same run: a bare APPEND round trip and a bare
SMTP delivery, so the numbers say how much is ours.
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
from kundo_gdpr.service import Worker  # noqa: E402
from tests.servers import Dovecot, SmtpServer, dovecot_binary, free_port  # noqa: E402
from tests.test_imap_smtp import erase_mail, make_config, make_worker  # noqa: E402


def receipts_for(smtp: SmtpServer, message_id: str) -> int:
    return sum(1 for m in smtp.messages() if str(m["In-Reply-To"]) == message_id)


def wait_until(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def start_worker(worker: Worker) -> threading.Thread:
    worker.stop.clear()
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    return thread


def baseline(imap: Dovecot, smtp: SmtpServer) -> tuple[float, float]:
    raw = erase_mail(10**6)
    with imap.client() as client:
        client.create_folder("Baseline")
        started = time.perf_counter()
        for _ in range(20):
            client.append("Baseline", raw)
        append = (time.perf_counter() - started) / 20
    started = time.perf_counter()
    for _ in range(20):
        with smtplib.SMTP(smtp.host, smtp.port) as conn:
            conn.sendmail("a@example.com", ["b@example.com"], raw)
    send = (time.perf_counter() - started) / 20
    smtp.received.clear()
    return append, send


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
    append_s, send_s = baseline(imap, smtp)
    print(f"baseline: APPEND {append_s * 1000:.1f} ms, SMTP delivery {send_s * 1000:.1f} ms")
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
    print(
        f"latency over {len(latencies)} mails: median {statistics.median(latencies):.3f} s, "
        f"p95 {p95:.3f} s (goal: median < 2 s)"
    )

    smtp.received.clear()
    first = args.mails
    with imap.client() as client:
        for n in range(first, first + args.backlog):
            client.append("INBOX", erase_mail(n))
    started = time.perf_counter()
    thread = start_worker(worker)
    ok = wait_until(
        lambda: (
            sum(1 for m in smtp.messages() if ".receipt@" in str(m["Message-ID"])) >= args.backlog
        ),
        max(60.0, args.backlog * 2.0),
    )
    elapsed = time.perf_counter() - started
    worker.stop.set()
    thread.join()
    answered = sum(1 for m in smtp.messages() if ".receipt@" in str(m["Message-ID"]))
    print(
        f"backlog: {answered}/{args.backlog} answered in {elapsed:.1f} s, "
        f"{answered / elapsed:.1f} mails/s{'' if ok else ' (timed out)'}"
    )


if __name__ == "__main__":
    main()
