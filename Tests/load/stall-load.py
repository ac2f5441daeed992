#!/usr/bin/env python3
"""Load for the stalled-log test (Tests/IntegrationTests/DaemonLoggingTests.swift).

    stall-load.py SOCKET SECONDS TOKEN_PROFILE LOCKED_PROFILE...

For SECONDS, as user nobody (uid 65534):
- one long-lived process asks for TOKEN_PROFILE again and again on one kept-alive connection
  (its repeats are folded: they write no audit line);
- meanwhile short-lived processes are forked, each asking once for every LOCKED_PROFILE (denied:
  an audit line each, since each process is new) and once for TOKEN_PROFILE (a first hand-out:
  an audit line), on one connection. They are what fills the daemon's log buffer.

Every answer must come within 5 s (a read timeout counts as a hang). Prints one JSON object:
answers by status for the token requests, the slowest token answer by status, the error code
of the first non-200 token answer, hangs and connection errors.
"""

import json
import os
import select
import socket
import sys
import time

TIMEOUT = 5.0


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


def read_answer(connection, pending):
    """One HTTP/1.1 answer from `connection` (bytes already read in `pending`): status, body, rest."""
    while b"\r\n\r\n" not in pending:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        pending += chunk
    head, rest = pending.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return status, rest[:length], rest[length:]


def connect(path):
    connection = socket.socket(socket.AF_UNIX)
    connection.settimeout(TIMEOUT)
    connection.connect(path)
    return connection


def report(out, kind, status, seconds, body=b""):
    code = ""
    if status != 200 and body:
        try:
            code = json.loads(body).get("error", "")
        except ValueError:
            code = "?"
    os.write(out, f"{kind} {status} {seconds:.4f} {code}\n".encode())


def hammer(path, profile, until, out):
    connection = connect(path)
    pending = b""
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            connection.sendall(request(f"/v1/token/{profile}"))
            status, body, pending = read_answer(connection, pending)
        except socket.timeout:
            report(out, "token", -1, time.monotonic() - start)
            return
        except OSError:
            report(out, "token", -2, time.monotonic() - start)
            connection = connect(path)
            pending = b""
            continue
        report(out, "token", status, time.monotonic() - start, body)
        # Thousands of requests, not all the CPU: the other test suites run beside this one.
        time.sleep(0.001)


def newcomer(path, profile, locked, out):
    connection = connect(path)
    pending = b""
    # Pipelined: the denials first, then the token.
    connection.sendall(b"".join(request(f"/v1/token/{name}") for name in locked) + request(f"/v1/token/{profile}"))
    for _ in locked:
        status, _, pending = read_answer(connection, pending)
        report(out, "locked", status, 0)
    start = time.monotonic()
    status, body, pending = read_answer(connection, pending)
    report(out, "token", status, time.monotonic() - start, body)


def child(function, *arguments):
    pid = os.fork()
    if pid == 0:
        out = arguments[-1]
        try:
            os.setgid(65534)
            os.setuid(65534)
            function(*arguments)
        except socket.timeout:
            os.write(out, b"token -1 5 \n")
        except OSError as error:
            os.write(out, f"token -2 0 {type(error).__name__}\n".encode())
        finally:
            os._exit(0)
    return pid


def main():
    path, seconds, profile, locked = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    read_end, write_end = os.pipe()
    until = time.monotonic() + seconds
    children = {child(hammer, path, profile, until, write_end)}
    statuses, slowest, codes = {}, {}, {}
    buffered = b""

    def collect(wait):
        nonlocal buffered
        ready, _, _ = select.select([read_end], [], [], wait)
        if ready:
            buffered += os.read(read_end, 1 << 16)
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                kind, status, elapsed, code = (line.decode().split(" ") + [""])[:4]
                if kind != "token":
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                slowest[status] = max(slowest.get(status, 0.0), float(elapsed))
                if code:
                    codes.setdefault(status, code)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)

    while time.monotonic() < until:
        if len(children) < 3:
            children.add(child(newcomer, path, profile, locked, write_end))
        collect(0.002)
    while children:
        collect(0.05)
    collect(0)
    print(json.dumps({"statuses": statuses, "slowest": slowest, "codes": codes}))


if __name__ == "__main__":
    main()
