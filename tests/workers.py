"""Real `kundo-gdpr run` processes for tests: start, SIGKILL, restart, stop.

Each worker slot logs to its own file (with --verbose), so a test can see which
one took the fetch lock."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

COMMAND = str(Path(sys.executable).parent / "kundo-gdpr")
FETCHES = re.compile(r"this worker fetches now \(pid (\d+)\)")


@dataclass
class Workers:
    config_file: Path
    env: dict[str, str]
    logs: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _files: list[IO[bytes]] = field(default_factory=list)

    def start(self, slot: int) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"worker-{slot}.log").open("ab")
        self._files.append(log)
        proc = subprocess.Popen(
            [COMMAND, "--verbose", "--config", str(self.config_file), "run"],
            env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=log)
        self.procs[slot] = proc
        return proc

    def kill(self, slot: int) -> None:
        proc = self.procs.pop(slot)
        proc.kill()
        proc.wait()

    def fetcher(self) -> int | None:
        """The slot whose live process last said it took the fetch lock."""
        by_pid = {p.pid: slot for slot, p in self.procs.items() if p.poll() is None}
        last: int | None = None
        for slot in sorted(by_pid.values()):
            text = (self.logs / f"worker-{slot}.log").read_text(errors="replace")
            for pid in FETCHES.findall(text):
                if int(pid) in by_pid:
                    last = by_pid[int(pid)]
        return last

    def stop_all(self) -> list[int]:
        """SIGTERM every worker and wait; their exit codes."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs.values():
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        self.procs.clear()
        for log in self._files:
            log.close()
        return codes

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.logs.glob("worker-*.log")))
