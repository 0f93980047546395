"""Run the simulator in the foreground until SIGINT/SIGTERM (``erpsync sim``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from erpsync.sim.server import SimOptions, SimServer


def serve(options: SimOptions, echo: Callable[[str], None]) -> int:
    """Start the simulator, print where it listens, block until SIGINT/SIGTERM, stop cleanly.

    Returns the number of the signal that stopped it. The first line printed is machine-readable
    (``erpsync sim listening base_url=… soap_url=… wsdl_url=… graphql_url=…``), for scripts that start
    it with ``--port 0``.
    """
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server = SimServer(options)
    try:
        server.start()
        echo(f"erpsync sim listening base_url={server.base_url} soap_url={server.soap_url} "
             f"wsdl_url={server.wsdl_url} graphql_url={server.graphql_url}")
        epoch = server.time_epoch
        echo(f"  state: GET {server.base_url}/_sim/state   faults: POST {server.base_url}/_sim/faults")
        echo(f"  SOAP login user={server.soap_user} (password from --soap-password); GraphQL: Bearer token "
             f"from --token; tier={options.tier}; time scale x{server.time_factor}"
             + (f" from epoch {epoch}" if epoch is not None and server.time_factor != 1.0 else ""))
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    echo(f"erpsync sim stopped ({signal.Signals(received[0]).name if received else 'no signal'})")
    return received[0] if received else 0
