"""systemd's notify protocol (sd_notify(3)) spoken directly over ``$NOTIFY_SOCKET``.

Each message is one datagram of ``KEY=VALUE`` lines sent to the AF_UNIX socket named by
``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). Outside systemd the variable
is unset and every call is a no-op. ``WATCHDOG_USEC`` (and ``WATCHDOG_PID`` when set, which must be
our pid) says how often systemd expects ``WATCHDOG=1``; the daemon pings at half that interval and
only while its loop is healthy.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

from erpsync.logs import get_logger

log = get_logger("erpsync.daemon.notify")


class SystemdNotifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.failed_sends = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        environ = os.environ if environ is None else environ
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def _target(self) -> str:
        assert self.address
        # abstract namespace: a leading "@" stands for the NUL byte
        return "\0" + self.address[1:] if self.address.startswith("@") else self.address

    def send(self, **fields: str | int) -> bool:
        """Send one message; returns False (and counts it) when systemd could not be reached."""
        if not self.address:
            return False
        payload = "\n".join(f"{k}={_one_line(str(v))}" for k, v in fields.items()).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._target())
                return True
            except OSError as exc:
                self.failed_sends += 1
                log.warning("systemd.notify_failed", error=str(exc), message=payload.decode()[:80])
                return False

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, str | int] = {"READY": 1}
        if status:
            fields["STATUS"] = status
        fields["MAINPID"] = os.getpid()
        return self.send(**fields)

    def reloading(self, monotonic_usec: int | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (CLOCK_MONOTONIC now, as systemd ≥ 253 requires
        for ``Type=notify-reload`` and ``systemctl reload`` correlation); send ``ready()`` when the
        reload is done (applied or refused)."""
        usec = monotonic_usec if monotonic_usec is not None else time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(RELOADING=1, MONOTONIC_USEC=usec)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def stopping(self, status: str | None = None, *, extend_timeout_s: float | None = None) -> bool:
        """``STOPPING=1``; with ``extend_timeout_s``, ``EXTEND_TIMEOUT_USEC`` asks systemd (≥ 236) to
        wait that long from now before it escalates, whatever the unit's ``TimeoutStopSec``."""
        fields: dict[str, str | int] = {"STOPPING": 1}
        if status:
            fields["STATUS"] = status
        if extend_timeout_s is not None and extend_timeout_s > 0:
            fields["EXTEND_TIMEOUT_USEC"] = int(extend_timeout_s * 1_000_000)
        return self.send(**fields)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(value: str) -> str:
    return value.replace("\n", " ")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings systemd expects, or None when no watchdog is configured."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        seconds = int(usec) / 1_000_000
    except ValueError:
        return None
    return seconds if seconds > 0 else None
