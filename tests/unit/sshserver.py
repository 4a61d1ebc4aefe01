"""Test helper: a real SSH server on 127.0.0.1 (paramiko's ServerInterface) in a thread, that runs each
exec request with the host's `sh -c`, its stdin, stdout and stderr relayed, like a board's sshd.

    with SshServer(host_key) as server:      # server.port
        ...
"""

from __future__ import annotations

import socket
import subprocess
import threading

import paramiko


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: "SshServer"):
        self.server = server

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        ok = username == "root" and key.get_base64() == self.server.client_pub.get_base64()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_exec_request(self, channel, command):
        self.server.commands.append(command.decode())
        threading.Thread(target=self.server._run, args=(channel, command.decode()), daemon=True).start()
        return True


class SshServer:
    def __init__(self, host_key: paramiko.PKey, client_pub: paramiko.PKey, mangle=None):
        """mangle(command, stdout) -> stdout: lets a test damage what a command sends back."""
        self.host_key = host_key
        self.client_pub = client_pub
        self.mangle = mangle
        self.commands: list[str] = []
        self.transports: list[paramiko.Transport] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "SshServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._sock.close()
        for t in self.transports:
            t.close()

    def drop(self) -> None:
        """Cut every connection, as a board that lost power or network would (without a goodbye)."""
        for t in self.transports:
            t.sock.shutdown(socket.SHUT_RDWR)
            t.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            self.transports.append(t)
            try:
                t.start_server(server=_Interface(self))
            except (paramiko.SSHException, EOFError, OSError):
                continue

    def _run(self, channel: paramiko.Channel, command: str) -> None:
        proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

        def feed():
            try:
                while data := channel.recv(65536):
                    proc.stdin.write(data)
                    proc.stdin.flush()
            except (OSError, EOFError, ValueError):
                pass
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        def pump(src, send):
            try:
                while data := src.read1(65536):
                    send(data)
            except (OSError, EOFError):
                pass

        threads = [threading.Thread(target=feed, daemon=True)]
        if self.mangle is None:
            threads.append(threading.Thread(target=pump, args=(proc.stdout, channel.sendall), daemon=True))
        threads.append(threading.Thread(target=pump, args=(proc.stderr, channel.sendall_stderr), daemon=True))
        for t in threads:
            t.start()
        if self.mangle is not None:
            out = proc.stdout.read()
            try:
                channel.sendall(self.mangle(command, out))
            except OSError:
                pass
        for t in threads[1:]:
            t.join()
        status = proc.wait()
        try:
            channel.send_exit_status(status)
            channel.shutdown_write()
            channel.close()
        except (OSError, EOFError):
            pass
