"""A board's serial console through pyserial: a local tty, or a TCP port as ser2net serves it
(`rfc2217://host:port` with the RFC 2217 telnet options, or `socket://host:port` raw).

Read only: the harness never types on a board's console. The reader returns what arrived, b"" after a
quiet interval, or None once the port has gone (ser2net stopped, the USB adapter was pulled), which is
the shape ConsoleTee reads.
"""

from __future__ import annotations

import time

import serial

from harness.core.deadline import Deadline
from harness.core.errors import InfraError


class SerialConsole:
    def __init__(self, url: str, baud: int):
        self.url = url
        # Read only: the answers to DTR/RTS requests are not waited for (a pty behind ser2net, like the
        # test bed's, has no modem lines and never answers them; pyserial would time out opening it).
        self._open_url = url + ("&" if "?" in url else "?") + "ign_set_control" if url.startswith("rfc2217://") else url
        self.baud = baud
        self._port: serial.SerialBase | None = None
        self.error: str | None = None

    def open(self, deadline: Deadline, retry_s: float = 0.5) -> None:
        """Open the port, retrying until the deadline (ser2net may still be starting)."""
        last = None
        while True:
            try:
                self._port = serial.serial_for_url(self._open_url, baudrate=self.baud, timeout=0.2)
                return
            except (serial.SerialException, OSError, ValueError) as e:
                last = e
            if deadline.remaining <= retry_s:
                raise InfraError(f"cannot open the serial console {self.url} at {self.baud} baud: {last}. Check the "
                                 f"board file's `serial.url` (a tty, rfc2217://HOST:PORT or socket://HOST:PORT) and "
                                 f"that ser2net (or the tty) is there")
            time.sleep(retry_s)

    def read(self, timeout: float) -> bytes | None:
        port = self._port
        if port is None:
            return None
        try:
            port.timeout = timeout
            waiting = port.in_waiting
            return port.read(max(1, min(waiting, 1 << 16)))
        except (serial.SerialException, OSError, ValueError, AttributeError, TypeError) as e:
            # AttributeError/TypeError: pyserial's socket:// and rfc2217:// ports after close() from another thread.
            self.error = self.error or str(e)
            return None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass
