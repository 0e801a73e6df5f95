"""Drive a real headless Chromium over the DevTools protocol, on a pipe: no ports, no packages.

Why the protocol and not ``--dump-dom`` alone: the dashboard's checks need to run script
in the page after it loaded (tick a filter, read plotly's trace state), to hear the page's
console (``Runtime.exceptionThrown``, ``Runtime.consoleAPICalled``, ``Log.entryAdded``:
exactly the page's messages, none of Chromium's own start-up noise) and to take a full-page
screenshot. ``--remote-debugging-pipe`` makes Chromium read NUL-terminated JSON commands
on fd 3 and write responses and events on fd 4, so a few dozen lines replace a websocket
client or a browser-automation package.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["Browser", "BrowserError"]

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-pipe",
)  # fmt: skip


class BrowserError(AssertionError):
    """Chromium did not answer, or answered a command with an error."""


class Browser:
    """One headless Chromium with one page; use as a context manager.

    Args:
        binary: the chromium executable.
        profile: an empty directory for the browser profile.
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.
    """

    def __init__(self, binary: str, profile: Path, width: int = 1400, height: int = 900) -> None:
        cmd_read, self._cmd_write = os.pipe()
        self._evt_read, evt_write = os.pipe()

        def wire() -> None:  # in the child: the protocol's fds are 3 (commands) and 4 (events)
            a = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 10)  # above 4 first, so dup2 cannot clobber
            b = fcntl.fcntl(evt_write, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        argv = [binary, *_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        # Chromium's own chatter goes to a file: a pipe nobody drains could block it.
        self.log = Path(f"{profile}.stderr.log")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log, close_fds=False, preexec_fn=wire)  # fmt: skip
        os.close(cmd_read)
        os.close(evt_write)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      width=width, height=height, deviceScaleFactor=1, mobile=False)  # fmt: skip
        except BaseException:
            self.close()  # never leave a browser behind a failed start
            raise

    # -- protocol -------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._evt_read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    self._inbox.put(json.loads(raw))
        self._inbox.put(None)  # the browser closed the pipe

    def _pump(self, deadline: float) -> None:
        """Move one message from the pipe into replies or events, waiting until ``deadline``."""
        try:
            msg = self._inbox.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            return
        if msg is None:
            raise BrowserError(f"chromium went away: {self.log.read_text(errors='replace')[-2000:]}")
        if "id" in msg:
            self._replies[msg["id"]] = msg
        else:
            self.events.append(msg)

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
              timeout: float = 60.0) -> dict[str, Any]:  # fmt: skip
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_write, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while self._next_id not in self._replies:
            if time.monotonic() > deadline:
                raise BrowserError(f"no answer to {method} within {timeout} s")
            self._pump(deadline)
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One command on the page's session."""
        return self._send(method, params, self._session)

    # -- page -----------------------------------------------------------------------

    def navigate(self, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` and wait for its load event (every inline script has run by then)."""
        seen = len(self.events)
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[seen:]):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load within {timeout} s")
            self._pump(deadline)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable results)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its last value otherwise raises."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                if not value:
                    raise BrowserError(f"still false after {timeout} s: {expression[:120]}")
                return value
            time.sleep(0.1)

    def console_errors(self) -> list[str]:
        """The page's uncaught exceptions, console.error/assert calls and error log entries."""
        errors = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append(details.get("exception", {}).get("description") or details.get("text", "?"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(params["entry"].get("text", "?"))
        return errors

    def screenshot(self, path: Path, max_height: int = 6000) -> Path:
        """A PNG of the whole page (capped at ``max_height`` CSS pixels)."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not within 10 s."""
        try:
            self._send("Browser.close", timeout=10)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_write)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
