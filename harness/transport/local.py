"""The coordinator's own machine as a device: subprocesses, same interface as SSH."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.config import Device
from harness.config.inventory import DEFAULTS
from harness.errors import CommandTimeout, ConnectError
from harness.hashing import sha256_file
from harness.transport.base import CommandResult, Session, Transport


# What the agent on this machine may see of the coordinator's environment: where programs,
# libraries and Python live, the locale and temp dirs, and the runtimes' and math libraries'
# own settings, where this machine keeps its lease (EDGE_HARNESS_LEASE_DIR, see
# devices/agent/lease.py) and the sysfs root of its power modes (EDGE_HARNESS_SYSFS_ROOT, a fake
# tree in tests: devices/agent/power/board.py). Not the rest: a CI job's tokens and cloud credentials have no
# business in a site actor (which Ray may place on another node) or a measured process.
AGENT_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR", "TEMP", "TMP", "VIRTUAL_ENV",
             "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "EDGE_HARNESS_LEASE_DIR", "EDGE_HARNESS_SYSFS_ROOT")
AGENT_ENV_PREFIXES = ("LC_", "PYTHON", "CONDA_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "GOMP_", "ORT_", "OV_",
                      "OPENVINO_", "ONEDNN_", "DNNL_", "TF_", "CUDA_", "NVIDIA_", "TRT_", "XDG_")


def agent_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``env`` the agent on this machine is started with (``AGENT_ENV``)."""
    return {k: v for k, v in env.items() if k in AGENT_ENV or k.startswith(AGENT_ENV_PREFIXES)}


class LocalTransport(Transport):
    """Subprocesses on this machine.

    ``base_env`` is the environment commands start from. Pass the coordinator's own
    environment as captured in the driver: a Ray worker's has ``OMP_NUM_THREADS=1``
    injected, which would silently change how the agent's runtime uses threads.
    """

    name = "local"

    def __init__(self, workdir: str, base_env: dict[str, str] | None = None):
        super().__init__(str(Path(workdir).expanduser()))
        self.base_env = dict(os.environ if base_env is None else base_env)

    @classmethod
    def for_device(cls, device: Device, driver_env: dict[str, str]) -> LocalTransport:
        """The coordinator's own machine, starting commands from the driver's environment."""
        return cls(device.workdir or DEFAULTS["workdir"], base_env=driver_env)

    def connect(self) -> None:
        self._verified.clear()
        try:
            Path(self.workdir, "cache").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConnectError(f"cannot create work directory {self.workdir}: {e}") from None

    def run(
        self,
        argv: list[str],
        timeout_s: float,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        start = time.monotonic()
        # A new session makes the child a process-group leader, so a timeout kills the
        # agent and anything it started, never just the top process.
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**self.base_env, **(env or {})},
            cwd=self.workdir,
            start_new_session=True,
        )
        err_chunks: list[str] = []
        drain = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
        drain.start()
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            _kill_group(proc)

        timer = threading.Timer(timeout_s, expire)
        timer.start()
        out_lines: list[str] = []
        try:
            for line in proc.stdout:
                out_lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
        drain.join(timeout=5)
        duration = time.monotonic() - start
        if timed_out.is_set():
            raise CommandTimeout(f"{argv[0]} timed out after {timeout_s:g} s (process group killed)")
        return CommandResult(proc.returncode, "".join(out_lines), "".join(err_chunks), duration)

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> Session:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**self.base_env, **(env or {})}, cwd=self.workdir, start_new_session=True,
        )  # fmt: skip
        return _LocalSession(proc, f"{argv[0]} (local)")

    def size(self, remote: str) -> int | None:
        try:
            return os.stat(remote).st_size
        except FileNotFoundError:
            return None

    def sha256(self, remote: str) -> str | None:
        try:
            return sha256_file(Path(remote))
        except OSError:
            return None

    def put(self, local: Path, remote: str) -> None:
        Path(remote).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{remote}.tmp-{os.getpid()}-{threading.get_ident()}"
        shutil.copyfile(local, tmp)
        with open(tmp, "rb") as f:  # on disk before it has its name: a power loss leaves no torn cache file
            os.fsync(f.fileno())
        os.replace(tmp, remote)

    def write_text(self, remote: str, text: str) -> None:
        Path(remote).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{remote}.tmp-{os.getpid()}-{threading.get_ident()}"  # boards of one site actor share the process
        Path(tmp).write_text(text, encoding="utf-8")
        os.replace(tmp, remote)

    def close(self) -> None:
        pass


class _LocalSession(Session):
    def __init__(self, proc: subprocess.Popen[bytes], what: str):
        super().__init__(what)
        self.proc = proc
        self._sel = selectors.DefaultSelector()
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)
            self._sel.register(stream.fileno(), selectors.EVENT_READ)
        self._open = 2

    def send_line(self, text: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((text + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except OSError as err:
            raise ConnectError(f"{self.what}: ended: {err}") from None

    def _poll(self, wait_s: float) -> tuple[bytes, bytes, bool]:
        assert self.proc.stdout is not None
        chunks: dict[int, bytes] = {}
        for key, _ in self._sel.select(wait_s):
            data = os.read(key.fd, 65536)
            if not data:  # that stream has ended
                self._sel.unregister(key.fd)
                self._open -= 1
            chunks[key.fd] = data
        out = chunks.get(self.proc.stdout.fileno(), b"")
        err = b"".join(v for k, v in chunks.items() if k != self.proc.stdout.fileno())
        return out, err, self._open == 0

    def _kill(self) -> bool:
        _kill_group(self.proc)
        return True

    def close(self) -> None:
        if self.proc.returncode is not None and self.proc.stdout is not None and self.proc.stdout.closed:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the server ends at end of input
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc)
            self.proc.wait()
        self._sel.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
