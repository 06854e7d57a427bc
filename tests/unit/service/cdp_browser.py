"""A small driver for a real headless Chromium over the Chrome DevTools Protocol.

The browser runs as a subprocess with ``--remote-debugging-port=0``; it prints the
browser's DevTools WebSocket URL on stderr, and every test connects to it with the
``websockets`` package (no Playwright, no downloaded browser). A test opens its own page
(target), drives it with real input events and reads it with ``Runtime.evaluate``.

Exceptions thrown by page scripts and ``console.error`` calls are collected per page so a
test can assert the page ran without script errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import websockets

#: How CI (and a developer) gets the browser: Debian's own chromium package.
INSTALL_COMMAND = "apt-get install -y -q chromium"
CHROMIUM_ENV = "LIVEOPT_CHROMIUM"
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)
_DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserError(RuntimeError):
    """The browser could not be found, started or driven."""


def find_chromium() -> str:
    """The Chromium executable: ``$LIVEOPT_CHROMIUM``, else ``chromium`` on the PATH.

    Raises ``BrowserError`` naming the install command when there is none.
    """
    configured = os.environ.get(CHROMIUM_ENV)
    candidates = [configured] if configured else ["chromium", "/usr/bin/chromium",
                                                   "chromium-browser"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise BrowserError(
        f"no Chromium found (looked for {', '.join(candidates)}); install it with "
        f"`{INSTALL_COMMAND}` or point ${CHROMIUM_ENV} at a Chromium executable")


class ChromiumProcess:
    """A running headless Chromium (start with ``launch``, end with ``close``)."""

    def __init__(self, process: subprocess.Popen[str], devtools_url: str,
                 profile: tempfile.TemporaryDirectory[str], stderr_tail: deque[str]) -> None:
        self.process = process
        self.devtools_url = devtools_url
        self._profile = profile
        self._stderr_tail = stderr_tail

    @classmethod
    def launch(cls, executable: str | None = None, *, startup_timeout_s: float = 30.0,
               ) -> ChromiumProcess:
        """Start Chromium and wait for its DevTools endpoint."""
        executable = executable or find_chromium()
        profile = tempfile.TemporaryDirectory(prefix="liveopt-chromium-")
        process = subprocess.Popen(
            [executable, *_FLAGS, f"--user-data-dir={profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace")
        found: list[str] = []
        ready = threading.Event()
        tail: deque[str] = deque(maxlen=40)

        # Chromium keeps writing to stderr; it is drained for the whole run so the pipe
        # never fills up and blocks the browser.
        def drain() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                tail.append(line.rstrip())
                match = _DEVTOOLS_LINE.search(line)
                if match and not found:
                    found.append(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=drain, name="chromium-stderr", daemon=True).start()
        if not ready.wait(startup_timeout_s) or not found:
            process.kill()
            process.wait()
            profile.cleanup()
            raise BrowserError("Chromium did not report a DevTools endpoint; its stderr:\n"
                               + "\n".join(tail))
        return cls(process, found[0], profile, tail)

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Chromium's helper processes can still write into the profile for a moment after
        # the browser exits ("Directory not empty"): retry the removal briefly.
        for _ in range(40):
            try:
                self._profile.cleanup()
                return
            except OSError:
                time.sleep(0.05)
        self._profile.cleanup()

    @contextlib.asynccontextmanager
    async def page(self, width: int = 1280, height: int = 900) -> AsyncIterator[Page]:
        """A fresh page (its own browser context: no shared storage) of the given size."""
        async with CdpConnection(self.devtools_url) as connection:
            context = await connection.send("Target.createBrowserContext")
            context_id = context["browserContextId"]
            target = await connection.send("Target.createTarget", {
                "url": "about:blank", "browserContextId": context_id})
            attached = await connection.send("Target.attachToTarget", {
                "targetId": target["targetId"], "flatten": True})
            page = Page(connection, attached["sessionId"])
            await page.setup(width, height)
            try:
                yield page
            finally:
                with contextlib.suppress(BrowserError, websockets.ConnectionClosed):
                    await connection.send("Target.closeTarget",
                                          {"targetId": target["targetId"]})
                    await connection.send("Target.disposeBrowserContext",
                                          {"browserContextId": context_id})


class CdpConnection:
    """One DevTools WebSocket: numbered commands, answers matched by id, events routed to
    the page (session) they belong to."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, list[Any]] = {}
        self._socket: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CdpConnection:
        self._socket = await websockets.connect(self.url, max_size=None, ping_interval=None)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def listen(self, session_id: str, callback: Any) -> None:
        """Call ``callback(method, params)`` for every event of ``session_id``."""
        self._listeners.setdefault(session_id, []).append(callback)

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                for callback in self._listeners.get(message.get("sessionId", ""), []):
                    callback(message["method"], message.get("params", {}))
        except websockets.ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("DevTools connection closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session_id: str | None = None, timeout_s: float = 15.0) -> dict[str, Any]:
        """Send one command and return its result (``BrowserError`` on a protocol error)."""
        command_id = next(self._ids)
        command: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            command["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._socket.send(json.dumps(command))
        answer = await asyncio.wait_for(future, timeout_s)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error']}")
        return answer.get("result", {})


class Page:
    """One browser tab driven over a ``CdpConnection`` session."""

    def __init__(self, connection: CdpConnection, session_id: str) -> None:
        self.connection = connection
        self.session_id = session_id
        self.script_errors: list[str] = []
        connection.listen(session_id, self._on_event)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.script_errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            self.script_errors.append("console.error: " + " ".join(map(str, args)))

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.connection.send(method, params, self.session_id)

    async def setup(self, width: int, height: int) -> None:
        await self.send("Runtime.enable")
        await self.send("Page.enable")
        await self.resize(width, height)

    async def resize(self, width: int, height: int) -> None:
        """Emulate a screen of ``width`` x ``height`` CSS pixels."""
        await self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 600})

    async def add_init_script(self, source: str) -> None:
        """Run ``source`` in every document this page loads, before the page's scripts."""
        await self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    async def goto(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        await self.wait_for("document.readyState === 'complete'", what="the page to load")

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluating {expression!r} threw: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, what: str, timeout_s: float = 8.0,
                       poll_s: float = 0.05) -> Any:
        """Poll ``expression`` until it is truthy and return its value.

        The timeout is only a failure deadline; it fails with ``what`` and the last value.
        """
        deadline = time.monotonic() + timeout_s
        value: Any = None
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
            await asyncio.sleep(poll_s)

    async def click(self, selector: str) -> None:
        """Click the centre of the element ``selector`` with real mouse events (so a hidden
        or covered element cannot be clicked)."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " const x = r.left + r.width / 2, y = r.top + r.height / 2;"
            " const hit = document.elementFromPoint(x, y);"
            " return {x, y, hit: hit === e || e.contains(hit)}; })()")
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        if not box["hit"]:
            raise BrowserError(f"{selector!r} is covered or not visible")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {
                "type": kind, "x": box["x"], "y": box["y"], "button": "left",
                "clickCount": 1})

    async def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element."""
        await self.send("Input.insertText", {"text": text})

