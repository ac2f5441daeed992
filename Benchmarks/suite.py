#!/usr/bin/env python3
"""The benchmark suite (issue 7): every row of the performance table, measured side by side with
its reference in the same run (alternating A and B, medians over rounds), printed as a table
and written to BENCHMARKS.md. Asserts nothing: these machines are shared and noisy.

Run through Benchmarks/suite, which installs nginx and builds what this needs.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SCOPE = "altinn:serviceowner/notifications.create"


def log(message):
    print(message, file=sys.stderr, flush=True)


def b64url(number):
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_key(directory, name="bench"):
    """An RSA-2048 key from openssl, as an EncodedJwk file NAME.jwk (0600, kid NAME) and its public JWK."""
    pem = os.path.join(directory, f"{name}.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem],
                   check=True, capture_output=True)
    text = subprocess.run(["openssl", "pkey", "-in", pem, "-noout", "-text"], check=True, capture_output=True, text=True).stdout
    os.unlink(pem)
    parts = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^(\w+):\s*(\S.*)?$", line)
        if header:
            current = header.group(1)
            rest = header.group(2) or ""
            if current == "publicExponent":
                parts[current] = int(rest.split()[0])
                current = None
            else:
                parts[current] = ""
        elif current and line.startswith(" "):
            parts[current] += line.strip().replace(":", "")
    numbers = {name: int(value, 16) if isinstance(value, str) else value for name, value in parts.items() if value != ""}
    jwk = {
        "kty": "RSA", "kid": name, "alg": "RS256",
        "n": b64url(numbers["modulus"]), "e": b64url(numbers["publicExponent"]),
        "d": b64url(numbers["privateExponent"]), "p": b64url(numbers["prime1"]), "q": b64url(numbers["prime2"]),
        "dp": b64url(numbers["exponent1"]), "dq": b64url(numbers["exponent2"]), "qi": b64url(numbers["coefficient"]),
    }
    path = os.path.join(directory, f"{name}.jwk")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(descriptor, base64.b64encode(json.dumps(jwk).encode()))
    os.close(descriptor)
    public = {key: jwk[key] for key in ("kty", "kid", "alg", "n", "e")}
    return path, public


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_by_mapping(pid):
    """Resident KiB by what is mapped: the executable, each shared library, the heap, thread
    stacks and other anonymous memory (from /proc/PID/smaps)."""
    totals = {}
    name = "anonymous"
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                path = fields[5] if len(fields) > 5 else ""
                name = os.path.basename(path) if path.startswith("/") else (path or "anonymous")
            elif fields[0] == "Rss:":
                totals[name] = totals.get(name, 0) + int(fields[1])
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def median(values):
    return statistics.median(values) if values else float("nan")


class Emulator:
    """`maskinporten-broker emulator` on a free loopback port."""

    def __init__(self, broker, directory):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([broker, "emulator", "--listen", f"127.0.0.1:{self.port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the emulator did not start")

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
            return json.loads(text) if text else None

    def stats(self):
        return self.call("GET", "/_emulator/stats")

    def reset(self):
        self.call("DELETE", "/_emulator/faults")
        self.call("POST", "/_emulator/stats/reset")

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Drain:
    """A reader that keeps up with a pipe, as journald keeps up with a service's standard output:
    the daemon's log lines are written for real, and read as fast as they come."""

    def __init__(self):
        self.read_end, self.write_end = os.pipe()
        self.bytes = 0
        self.lines = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            chunk = os.read(self.read_end, 1 << 16)
            if not chunk:
                return
            self.bytes += len(chunk)
            self.lines += chunk.count(b"\n")

    def close(self):
        os.close(self.write_end)
        self.thread.join(timeout=5)
        os.close(self.read_end)


class Daemon:
    """`maskinporten-broker serve` with N profiles against the emulator, started with a
    NOTIFY_SOCKET so that the time to READY=1 is known.

    Run as users run it: the shipped configuration's log level (info) with audit lines on, under
    systemd's log format (JOURNAL_STREAM set), its standard output and error read by a `Drain`.
    `audit_off` runs it at log level error instead, for a labelled comparison row only."""

    def __init__(self, broker, directory, emulator, key_file, profiles, wait_ready=True, lifetime_settings=None, extra_refresh="", audit_off=False,
                 delegation=False, altinn_platform=None, gateway=False, stored_fd=None, key_files=None):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.socket_path = os.path.join(directory, "broker.sock")
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        config = os.path.join(directory, "broker.yaml")
        lines = [
            # What config/broker.example.yaml ships: log level info, audit lines dropped (not
            # refused) if the log cannot keep up.
            "log_level: info", "audit:", "  on_overflow: drop",
            "socket:", f"  path: {self.socket_path}", '  mode: "0600"',
            "refresh:", "  min_valid_seconds: 10" if not extra_refresh else extra_refresh,
            "environments:", "  local:", f"    maskinporten_issuer: {emulator.base}/", f"    altinn_platform: {altinn_platform or emulator.base}",
            "profiles:",
        ]
        for index in range(profiles):
            name = "demo" if index == 0 else f"p{index:04d}"
            lines += [f"  {name}:", "    environment: local", "    client_id: bench", f"    scopes: [{SCOPE}]",
                      "    key:", f"      encoded_jwk_file: {key_files[index] if key_files else key_file}"]
            if delegation and index == 0:
                # A vendor's profile: any organisation's system user, chosen per request.
                lines += ["    delegation:", "      system_user_org: any", "      max_variants: 10000"]
            if gateway and index == 0:
                # The gateway as shipped (the Notifications API), with a large answer to stream.
                lines += ["    gateway:", "      paths: [/notifications/api/v1/]"]
        with open(config, "w") as file:
            file.write("\n".join(lines) + "\n")
        notify_path = os.path.join(directory, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        environment = dict(os.environ, NOTIFY_SOCKET=notify_path, JOURNAL_STREAM="8:12345")
        self.drain = Drain()
        self.started = time.monotonic()
        arguments = [broker, "serve", "--config", config] + (["--log-level", "error"] if audit_off else [])
        passed = ()
        if stored_fd is not None:
            # As systemd starts it after a restart: the kept memfd as fd 3, named in LISTEN_FDNAMES,
            # LISTEN_PID the daemon's own (the shell's, which exec keeps).
            arguments = ["/bin/sh", "-c", f'exec 3<&{stored_fd}; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=tokens exec "$0" "$@"'] + arguments
            passed = (stored_fd,)
        self.process = subprocess.Popen(arguments, env=environment, stdout=self.drain.write_end, stderr=self.drain.write_end, pass_fds=passed)
        self.ready_after = None
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=120):
        self.notify.settimeout(timeout)
        while True:
            message = self.notify.recv(4096).decode()
            if "READY=1" in message.split("\n"):
                self.ready_after = time.monotonic() - self.started
                return self.ready_after

    def wait_stored(self, timeout=5):
        """The descriptor of the newest FDSTORE=1 the daemon sent within `timeout` (None if none)."""
        end = time.monotonic() + timeout
        stored = None
        while time.monotonic() < end:
            self.notify.settimeout(max(0.01, min(0.3 if stored is not None else end - time.monotonic(), end - time.monotonic())))
            try:
                message, fds, _, _ = socket.recv_fds(self.notify, 4096, 4)
            except (socket.timeout, BlockingIOError):
                if stored is not None:
                    return stored
                continue
            for fd in fds:
                if b"FDSTORE=1" in message and fd == fds[0]:
                    if stored is not None:
                        os.close(stored)
                    stored = fd
                else:
                    os.close(fd)
        return stored

    def queued_store(self):
        """The descriptor of the newest FDSTORE=1 already queued (the daemon has exited), or None."""
        self.notify.setblocking(False)
        stored = None
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.notify, 4096, 4)
            except (BlockingIOError, socket.timeout):
                return stored
            for index, fd in enumerate(fds):
                if b"FDSTORE=1" in message and index == 0:
                    if stored is not None:
                        os.close(stored)
                    stored = fd
                else:
                    os.close(fd)

    def wait_listening(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(self.socket_path)
                    return
            except OSError:
                time.sleep(0.002)
        raise RuntimeError("the daemon's socket never accepted")

    def stop(self, keep_store=False):
        """Stops the daemon; with `keep_store`, returns the descriptor of the last FDSTORE=1 it
        sent (as systemd would keep it), or None."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        kept = self.queued_store() if keep_store else None
        self.notify.close()
        self.drain.close()
        return kept


def nginx_preamble(directory):
    """An nginx configuration's start, up to inside `http {`: as fast as it is configured for the
    comparisons (no access log, workers per core, long keep-alive), everything kept in `directory`."""
    # As root nginx would hand its workers to nobody, who cannot read this private directory.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes auto;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {directory};
    proxy_temp_path {directory};
    fastcgi_temp_path {directory};
    uwsgi_temp_path {directory};
    scgi_temp_path {directory};
    keepalive_requests 1000000;"""


class Nginx:
    """nginx (Debian package) serving `body` on a Unix socket at the token's path."""

    def __init__(self, directory, body):
        self.directory = os.path.join(directory, "nginx")
        os.makedirs(self.directory, exist_ok=True)
        self.socket_path = os.path.join(self.directory, "nginx.sock")
        with open(os.path.join(self.directory, "token.json"), "wb") as file:
            file.write(body)
        config = os.path.join(self.directory, "nginx.conf")
        with open(config, "w") as file:
            file.write(nginx_preamble(self.directory) + f"""
    server {{
        listen unix:{self.socket_path};
        location = /v1/token/demo {{
            default_type application/json;
            add_header Cache-Control no-store;
            alias {self.directory}/token.json;
        }}
    }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-c", config, "-p", self.directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.socket_path):
                return
            time.sleep(0.02)
        raise RuntimeError("nginx did not start")

    def stop(self):
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class GatewayPeers:
    """The gateway's benchmark: a fast static upstream (nginx on loopback TCP: a 201 for an order,
    a 50 MB file, and the emulator's token endpoints behind it), and nginx as the reverse proxy
    doing the gateway's job (a fixed Authorization header, proxy_pass, kept-alive upstream
    connections) on a Unix socket.

    The upstream stands for Altinn, a server of its own: the proxy nginx runs in processes of its
    own too, as the daemon does. The same proxy inside the upstream's own processes (its worker
    reading the request, answering it as the upstream and passing the answer back, without waking
    another process) is on `shared_socket_path`, for a comparison row only."""

    ANSWER = '{"notificationOrderId":"3fa85f64-5717-4562-b3fc-2c963f66afa6","notification":{"shipmentId":"0b5c9ec1-7f7e-4f1e-9d7e-6f3b7c3d6a11","reminders":[]}}'
    PROXY = """
        location /v1/api/demo/ {
            proxy_pass http://altinn/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6ImFsdGlubjpzZXJ2aWNlb3duZXIvbm90aWZpY2F0aW9ucy5jcmVhdGUifQ.c2lnbmF0dXJl";
            proxy_set_header Cookie "";
        }"""

    def __init__(self, directory, emulator_port):
        self.directory = os.path.join(directory, "gateway-nginx")
        self.port = free_port()
        upstream_directory = os.path.join(self.directory, "upstream")
        proxy_directory = os.path.join(self.directory, "proxy")
        for path in (upstream_directory, proxy_directory):
            os.makedirs(path, exist_ok=True)
        self.socket_path = os.path.join(proxy_directory, "proxy.sock")
        self.shared_socket_path = os.path.join(upstream_directory, "proxy.sock")
        with open(os.path.join(self.directory, "blob"), "wb") as file:
            file.write(b"x" * (50 * 1024 * 1024))
        pool = f"\n    upstream altinn {{ server 127.0.0.1:{self.port}; keepalive 64; }}"
        upstream = f"""
    server {{
        listen 127.0.0.1:{self.port};
        location = /notifications/api/v1/future/orders {{ default_type application/json; return 201 '{self.ANSWER}'; }}
        location = /notifications/api/v1/blob {{ default_type application/octet-stream; alias {self.directory}/blob; }}
        location / {{ proxy_pass http://127.0.0.1:{emulator_port}; }}
    }}"""

        def proxy(socket_path):
            return f"\n    server {{\n        listen unix:{socket_path};" + self.PROXY + "\n    }"

        self.processes = [
            self.start(upstream_directory, nginx_preamble(upstream_directory) + pool + upstream + proxy(self.shared_socket_path) + "\n}\n",
                       self.shared_socket_path),
            self.start(proxy_directory, nginx_preamble(proxy_directory) + pool + proxy(self.socket_path) + "\n}\n", self.socket_path),
        ]

    @staticmethod
    def start(directory, text, socket_path):
        config = os.path.join(directory, "nginx.conf")
        with open(config, "w") as file:
            file.write(text)
        process = subprocess.Popen(["nginx", "-c", config, "-p", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(socket_path):
                return process
            time.sleep(0.02)
        raise RuntimeError(f"nginx (gateway peers, {directory}) did not start")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        for process in self.processes:
            process.send_signal(signal.SIGQUIT)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def uds_load(tool, socket_path, flags, seconds, path="/v1/token/demo"):
    output = subprocess.run([tool, "-s", socket_path, "-p", path, "-d", str(seconds)] + flags,
                            capture_output=True, text=True).stdout
    return {key: float(value) for key, value in re.findall(r"(\w+)=([0-9.]+)", output)}


def organisation_numbers(count, start=91000000):
    """`count` valid organisation numbers (nine digits, modulus 11)."""
    numbers, base = [], start
    while len(numbers) < count:
        digits = [int(c) for c in str(base)]
        check = 11 - sum(d * w for d, w in zip(digits, [3, 2, 7, 6, 5, 4, 3, 2])) % 11
        check = 0 if check == 11 else check
        if check != 10:
            numbers.append(f"{base}{check}")
        base += 1
    return numbers


def uds_get(socket_path, path):
    """One GET over the Unix socket; the status."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(socket_path)
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def holds_tokens(daemon, profiles):
    """Fails unless the first and the last of the daemon's profiles serve a token: memory measured
    with fetches failing would be memory of another daemon."""
    for name in ("demo", f"p{profiles - 1:04d}"):
        status = uds_get(daemon.socket_path, f"/v1/token/{name}")
        if status != 200:
            raise RuntimeError(f"profile {name} answered {status}, not a token")


def curl_body(socket_path):
    return subprocess.run(["curl", "-sf", "--unix-socket", socket_path, "http://localhost/v1/token/demo"],
                          check=True, capture_output=True).stdout


class Suite:
    def __init__(self, arguments):
        self.arguments = arguments
        self.broker = arguments.broker
        self.rows = []
        self.notes = []
        self.work = tempfile.mkdtemp(prefix="broker-bench-")
        self.key_file, self.public_jwk = make_key(self.work)
        self.emulator = Emulator(self.broker, self.work)
        self.emulator.call("POST", "/_emulator/clients", {"client_id": "bench", "scopes": [SCOPE], "keys": [self.public_jwk]})

    def close(self):
        self.emulator.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def row(self, measure, against, target, figure, reference, ratio, verdict, command):
        self.rows.append((measure, against, target, figure, reference, ratio, verdict, command))
        log(f"  {measure}: {figure} | {reference} | {ratio} | {verdict}")

    # -- HTTP on the socket against nginx ------------------------------------------------------

    def http(self):
        rounds, seconds, tool = self.arguments.rounds, self.arguments.seconds, self.arguments.uds_load
        log(f"HTTP: broker (shipped configuration, and audit off for comparison) and nginx, {seconds} s runs, {rounds} alternating rounds")
        daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, 1)
        quiet = Daemon(self.broker, os.path.join(self.work, "quiet"), self.emulator, self.key_file, 1, audit_off=True)
        body = curl_body(daemon.socket_path)
        nginx = Nginx(self.work, body)
        results = {}
        scenarios = [("keepalive64", ["-c", "64"]), ("newconn", ["-c", "1", "-n"])]
        servers = (("broker", daemon.socket_path), ("nginx", nginx.socket_path), ("broker-audit-off", quiet.socket_path))
        try:
            for _ in range(rounds):
                for name, flags in scenarios:
                    for server, path in servers:
                        results.setdefault((name, server), []).append(uds_load(tool, path, flags, seconds))
        finally:
            nginx.stop()
            daemon.stop()
            quiet.stop()
        self.notes.append(f"log lines the shipped-configuration daemon wrote during the HTTP runs (read from its pipe): {daemon.drain.lines:,}")

        def pick(name, server, field):
            return median([run.get(field, 0) for run in results[(name, server)]])

        shipped = "shipped configuration (log level info, audit on, journald format, stdout read as journald reads it)"
        command = f"Benchmarks/suite (uds-load -c 64 -d {seconds}, GET /v1/token/demo, {len(body)}-byte JSON body; nginx serves the same bytes)"
        ours, theirs = pick("keepalive64", "broker", "rps"), pick("keepalive64", "nginx", "rps")
        self.row(f"requests/s, keep-alive, 64 connections, cached token; {shipped}", "nginx, same bytes, same socket type and load generator", ">= 1.0x nginx",
                 f"{ours:,.0f} rps", f"{theirs:,.0f} rps", f"{ours / theirs:.2f}", "met" if ours >= 1.0 * theirs else "missed", command)
        ours, theirs = pick("newconn", "broker", "rps"), pick("newconn", "nginx", "rps")
        self.row(f"requests/s, one new connection per request, sequential; {shipped}", "the same nginx", ">= 0.9x nginx",
                 f"{ours:,.0f} rps", f"{theirs:,.0f} rps", f"{ours / theirs:.2f}", "met" if ours >= 0.9 * theirs else "missed",
                 f"Benchmarks/suite (uds-load -c 1 -n -d {seconds})")
        ours, theirs = pick("keepalive64", "broker", "p99_us"), pick("keepalive64", "nginx", "p99_us")
        self.row(f"p99 latency, keep-alive, 64 connections; {shipped}", "the same nginx", "<= 1.5x nginx's",
                 f"{ours:,.0f} us", f"{theirs:,.0f} us", f"{ours / theirs:.2f}", "met" if ours <= 1.5 * theirs else "missed", command)
        for name, label, flags in (("keepalive64", "keep-alive, 64 connections", "-c 64"), ("newconn", "one new connection per request", "-c 1 -n")):
            ours, theirs = pick(name, "broker-audit-off", "rps"), pick(name, "nginx", "rps")
            self.row(f"for comparison only: requests/s, {label}, audit off (`--log-level error`)", "the same nginx", "-",
                     f"{ours:,.0f} rps", f"{theirs:,.0f} rps", f"{ours / theirs:.2f}", "-", f"Benchmarks/suite (uds-load {flags} -d {seconds})")
        for (name, server), runs in sorted(results.items()):
            self.notes.append(f"{name} {server}: " + ", ".join(f"{run.get('rps', 0):,.0f} rps p50 {run.get('p50_us', 0):.0f} us p99 {run.get('p99_us', 0):.0f} us" for run in runs))

    # -- the Altinn API gateway against nginx as a reverse proxy --------------------------------

    def gateway(self):
        rounds, seconds, tool = self.arguments.rounds, self.arguments.seconds, self.arguments.uds_load
        log(f"gateway: broker (shipped configuration) and nginx as a reverse proxy, POST of an order, {seconds} s runs, {rounds} alternating rounds")
        peers = GatewayPeers(self.work, self.emulator.port)
        daemon = Daemon(self.broker, os.path.join(self.work, "gateway"), self.emulator, self.key_file, 1, altinn_platform=peers.base, gateway=True)
        order = '{"idempotencyId":"bench-1","recipient":{"recipientEmail":{"emailAddress":"kari@example.com","emailSettings":{"subject":"Hei","body":"Hello"}}}}'
        path = "/v1/api/demo/notifications/api/v1/future/orders"
        results = {}
        try:
            for _ in range(rounds):
                for server, socket_path in (("broker", daemon.socket_path), ("nginx", peers.socket_path), ("nginx-shared", peers.shared_socket_path)):
                    results.setdefault(server, []).append(uds_load(tool, socket_path, ["-c", "64", "-b", order], seconds, path=path))
            # Memory while a 50 MB answer streams to a reader, sampled every 5 ms.
            growth = []
            for _ in range(max(1, rounds // 2)):
                subprocess.run(["curl", "-sf", "-o", "/dev/null", "--unix-socket", daemon.socket_path, "http://localhost/v1/api/demo/notifications/api/v1/blob"],
                               check=True)
                before = rss_kib(daemon.process.pid)
                reader = subprocess.Popen(["curl", "-sf", "-o", "/dev/null", "--unix-socket", daemon.socket_path,
                                           "http://localhost/v1/api/demo/notifications/api/v1/blob"])
                peak = before
                while reader.poll() is None:
                    peak = max(peak, rss_kib(daemon.process.pid))
                    time.sleep(0.005)
                if reader.returncode != 0:
                    raise RuntimeError("the 50 MB answer did not come through the gateway")
                growth.append(peak - before)
        finally:
            daemon.stop()
            peers.stop()

        def pick(server, field):
            return median([run.get(field, 0) for run in results[server]])

        command = f"Benchmarks/suite --only gateway (uds-load -c 64 -d {seconds} -b ORDER, POST {path}; nginx proxy_pass with a fixed Authorization, upstream keepalive 64)"
        for server in ("broker", "nginx", "nginx-shared"):
            errors = sum(run.get("errors", 0) for run in results[server])
            if errors:
                self.notes.append(f"gateway {server}: {errors:.0f} requests not answered 2xx")
        ours, theirs = pick("broker", "rps"), pick("nginx", "rps")
        self.row("gateway requests/s, POST of an order, 64 connections, keep-alive; shipped configuration",
                 "nginx as a reverse proxy to the same upstream, in processes of its own",
                 ">= 0.8x nginx", f"{ours:,.0f} rps", f"{theirs:,.0f} rps", f"{ours / theirs:.2f}", "met" if ours >= 0.8 * theirs else "missed", command)
        ours, theirs = pick("broker", "p99_us"), pick("nginx", "p99_us")
        self.row("gateway p99 latency, same load", "the same nginx", "<= 1.5x nginx's", f"{ours:,.0f} us", f"{theirs:,.0f} us", f"{ours / theirs:.2f}",
                 "met" if ours <= 1.5 * theirs else "missed", command)
        # The proxy in the upstream's own workers, as this row measured before: no other process
        # to wake for the upstream's answer, which neither the daemon nor a real Altinn has.
        for field, label, unit in (("rps", "requests/s", "rps"), ("p99_us", "p99 latency", "us")):
            ours, theirs = pick("broker", field), pick("nginx-shared", field)
            self.row(f"for comparison only: gateway {label}", "nginx as a reverse proxy inside the upstream's own worker processes", "-",
                     f"{ours:,.0f} {unit}", f"{theirs:,.0f} {unit}", f"{ours / theirs:.2f}", "-", command)
        grown = median(growth)
        self.row("gateway: resident memory added while streaming a 50 MB answer", "-", "<= 8 MiB", f"{grown / 1024:.1f} MiB", "-", "-",
                 "met" if grown <= 8 * 1024 else "missed", "Benchmarks/suite --only gateway (VmRSS sampled every 5 ms during curl of a 50 MB answer, minus before)")
        for server, runs in sorted(results.items()):
            self.notes.append(f"gateway {server}: " + ", ".join(f"{run.get('rps', 0):,.0f} rps p50 {run.get('p50_us', 0):.0f} us p99 {run.get('p99_us', 0):.0f} us" for run in runs))
        self.notes.append("gateway streaming, RSS growth per run: " + ", ".join(f"{value / 1024:.1f} MiB" for value in growth))

    # -- grant signatures ------------------------------------------------------------------------

    def signatures(self):
        log("grant signatures against openssl speed")
        output = subprocess.run([self.arguments.signatures, "--rounds", str(self.arguments.rounds)], capture_output=True, text=True, check=True).stdout
        match = re.search(r"broker ([0-9.]+)\s+openssl ([0-9.]+)\s+ratio ([0-9.]+)", output)
        ours, theirs, ratio = float(match.group(1)), float(match.group(2)), float(match.group(3))
        self.row("grant signatures/s on one core", "`openssl speed -seconds 3 rsa2048` (sign/s)", ">= 0.9x",
                 f"{ours:,.0f} /s", f"{theirs:,.0f} /s", f"{ratio:.2f}", "met" if ratio >= 0.9 else "missed", "Benchmarks/run --rounds N")
        tpm = re.search(r"tpm ([0-9.]+) ms \(max ([0-9.]+)\)\s+memory ([0-9.]+) ms", output)
        if tpm:
            in_tpm, most, in_memory = float(tpm.group(1)), float(tpm.group(2)), float(tpm.group(3))
            self.row("one grant signed by a key in the TPM (swtpm), median of 50", "the same grant signed by the key in memory", "report",
                     f"{in_tpm:.1f} ms (max {most:.1f})", f"{in_memory:.1f} ms", f"{in_tpm / in_memory:.0f}", "report", "Benchmarks/run")

    # -- the token command against curl ----------------------------------------------------------

    def token_command(self):
        log("`maskinporten-broker token` against `curl --unix-socket`, whole process per call")
        daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, 1)
        calls = self.arguments.calls
        ours, theirs = [], []
        spawn = self.arguments.spawn_time
        try:
            for _ in range(self.arguments.rounds):
                for command, sink in (([self.broker, "token", "demo", "--socket", daemon.socket_path], ours),
                                      (["curl", "-sf", "--unix-socket", daemon.socket_path, "-H", "Accept: text/plain", "http://localhost/v1/token/demo"], theirs)):
                    output = subprocess.run([spawn, "-n", str(calls), "--"] + command, capture_output=True, text=True).stdout
                    sink.append(float(re.search(r"per_call_us=([0-9.]+)", output).group(1)))
        finally:
            daemon.stop()
        a, b = median(ours), median(theirs)
        self.row("`maskinporten-broker token` per call, whole process", "`curl --unix-socket` per call", "<= 0.5x curl's time",
                 f"{a / 1000:.2f} ms", f"{b / 1000:.2f} ms", f"{a / b:.2f}", "met" if a <= 0.5 * b else "missed",
                 f"Benchmarks/spawn-time -n {calls} -- maskinporten-broker token demo (and curl)")

    # -- memory ----------------------------------------------------------------------------------

    def memory(self):
        log("resident memory: 10 profiles idle, then 1,000")
        figures = {}
        for count in (10, self.arguments.profiles):
            samples = []
            for _ in range(max(1, self.arguments.rounds // 2)):
                self.emulator.reset()
                daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, count)
                time.sleep(2)
                samples.append(rss_kib(daemon.process.pid))
                holds_tokens(daemon, count)
                daemon.stop()
            figures[count] = median(samples)
        idle = figures[10]
        many = figures[self.arguments.profiles]
        per = (many - idle) / (self.arguments.profiles - 10)
        self.row("resident memory, idle, 10 profiles (tokens held); shipped configuration", "-", "<= 16 MiB",
                 f"{idle / 1024:.1f} MiB", "-", "-", "met" if idle <= 16 * 1024 else "missed", "Benchmarks/suite (VmRSS 2 s after READY=1)")
        # The profiles name one key file, as one Maskinporten client's profiles (one per set of
        # scopes) do: the daemon holds it once. A profile with a key of its own adds that key in
        # OpenSSL (about 5 KiB; see the notes).
        self.row(f"resident memory added per profile, at {self.arguments.profiles} profiles sharing one key file", "-", "<= 16 KiB",
                 f"{per:.1f} KiB", "-", "-", "met" if per <= 16 else "missed",
                 f"Benchmarks/suite ((VmRSS at {self.arguments.profiles} - VmRSS at 10) / {self.arguments.profiles - 10})")
        self.notes.append(f"VmRSS: 10 profiles {idle:.0f} KiB, {self.arguments.profiles} profiles {many:.0f} KiB")

        # The same with a key of its own for every profile (one Maskinporten client's keys, each
        # its own kid), at fewer profiles: RSA keys take openssl a while to make.
        count = min(200, self.arguments.profiles)
        directory = os.path.join(self.work, "own-keys")
        os.makedirs(directory, exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            made = list(pool.map(lambda index: make_key(directory, f"own{index:04d}"), range(count)))
        self.emulator.call("POST", "/_emulator/clients", {"client_id": "bench", "scopes": [SCOPE], "keys": [self.public_jwk] + [public for _, public in made]})
        own = {}
        for profiles in (10, count):
            samples = []
            for _ in range(max(1, self.arguments.rounds // 2)):
                self.emulator.reset()
                daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, profiles, key_files=[path for path, _ in made])
                time.sleep(2)
                samples.append(rss_kib(daemon.process.pid))
                holds_tokens(daemon, profiles)
                daemon.stop()
            own[profiles] = median(samples)
        per_own = (own[count] - own[10]) / (count - 10)
        self.row(f"resident memory added per profile, at {count} profiles each with a key of its own", "-", "stated", f"{per_own:.1f} KiB", "-", "-",
                 "stated", f"Benchmarks/suite ((VmRSS at {count} - VmRSS at 10) / {count - 10}, a key file per profile)")
        self.notes.append(f"VmRSS with a key per profile: 10 profiles {own[10]:.0f} KiB, {count} profiles {own[count]:.0f} KiB")

    # -- footprint: what a sidecar in every pod costs ----------------------------------------------

    def footprint(self):
        log("footprint: the executable, the package, the image; resident memory idle and after load")
        executable = os.path.join(os.path.dirname(self.broker), "maskinporten-brokerd")
        stripped = os.path.join(self.work, "maskinporten-brokerd.stripped")
        subprocess.run(["strip", "-o", stripped, executable], check=True)
        size = os.path.getsize(stripped)
        self.row("`maskinporten-brokerd`, stripped (as the package ships it)", "-", "<= 25 MB", f"{size / 1e6:.1f} MB", "-", "-",
                 "met" if size <= 25e6 else "missed", "Benchmarks/suite --only footprint (strip -o of the release build; stat)")
        if self.arguments.deb:
            deb = os.path.getsize(self.arguments.deb)
            installed = int(subprocess.run(["dpkg-deb", "-f", self.arguments.deb, "Installed-Size"], capture_output=True, text=True, check=True).stdout) * 1024
            self.row("the Debian package (.deb)", "-", "<= 8 MB", f"{deb / 1e6:.2f} MB ({deb / 2**20:.2f} MiB)", "-", "-", "met" if deb <= 8e6 else "missed",
                     "Benchmarks/suite --only footprint (scripts/build-deb; stat)")
            self.row("installed size", "-", "stated", f"{installed / 1e6:.1f} MB", "-", "-", "stated",
                     "Benchmarks/suite --only footprint (dpkg-deb -f DEB Installed-Size)")
        if self.arguments.image:
            image = int(subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", self.arguments.image],
                                       capture_output=True, text=True, check=True).stdout)
            self.row("the OCI image", "-", "<= 30 MB", f"{image / 1e6:.1f} MB ({image / 2**20:.1f} MiB)", "-", "-", "met" if image <= 30e6 else "missed",
                     "Benchmarks/suite --only footprint (scripts/build-image; podman image inspect --format {{.Size}})")
        idle = []
        loaded = []
        for _ in range(max(1, self.arguments.rounds // 2)):
            self.emulator.reset()
            daemon = Daemon(self.broker, os.path.join(self.work, "footprint"), self.emulator, self.key_file, 1)
            try:
                time.sleep(2)
                idle.append(rss_kib(daemon.process.pid))
                mapped = rss_by_mapping(daemon.process.pid)
                uds_load(self.arguments.uds_load, daemon.socket_path, ["-c", "64"], self.arguments.seconds)
                time.sleep(2)
                loaded.append(rss_kib(daemon.process.pid))
            finally:
                daemon.stop()
        self.row("resident memory, idle, 1 profile (its token held); shipped configuration", "-", "stated", f"{median(idle) / 1024:.1f} MiB", "-", "-", "stated",
                 "Benchmarks/suite --only footprint (VmRSS 2 s after READY=1)")
        self.row("resident memory after the keep-alive load (64 connections), 1 profile; shipped configuration", "-", "stated",
                 f"{median(loaded) / 1024:.1f} MiB", "-", "-", "stated",
                 f"Benchmarks/suite --only footprint (VmRSS 2 s after uds-load -c 64 -d {self.arguments.seconds})")
        self.notes.append("idle resident memory by mapping, 1 profile, KiB: " + ", ".join(f"{name} {kib:,}" for name, kib in mapped.items() if kib >= 64))
        self.notes.append("footprint VmRSS, KiB: idle " + ", ".join(f"{value}" for value in idle) + "; after load " + ", ".join(f"{value}" for value in loaded))

    # -- delegation: many organisations through one profile ---------------------------------------

    def variants(self):
        count = self.arguments.organisations
        log(f"delegation: {count:,} organisations through one profile, memory per variant and the cached variant's request rate")
        orgs = organisation_numbers(count)
        self.emulator.reset()
        daemon = Daemon(self.broker, os.path.join(self.work, "vendor"), self.emulator, self.key_file, 1, delegation=True)
        results = {}
        try:
            time.sleep(2)
            before = rss_kib(daemon.process.pid)
            for org in orgs:
                status = uds_get(daemon.socket_path, f"/v1/token/demo?system_user_org={org}")
                if status != 200:
                    raise RuntimeError(f"variant {org}: HTTP {status}")
            time.sleep(2)
            after = rss_kib(daemon.process.pid)
            fetched = self.emulator.stats().get("tokens_issued_by_organisation", {})
            variant = f"/v1/token/demo?system_user_org={orgs[0]}"
            for _ in range(self.arguments.rounds):
                for name, path in (("base", "/v1/token/demo"), ("variant", variant)):
                    # The daemon's CPU time per request too: steadier than the rate on a shared
                    # machine, where the load generator takes its share of the same cores.
                    start_cpu = cpu_seconds(daemon.process.pid)
                    run = uds_load(self.arguments.uds_load, daemon.socket_path, ["-c", "64"], self.arguments.seconds, path)
                    run["cpu_us"] = (cpu_seconds(daemon.process.pid) - start_cpu) * 1e6 / max(1, run.get("requests", 0))
                    results.setdefault(name, []).append(run)
        finally:
            daemon.stop()
        per = (after - before) / count
        self.row(f"resident memory added per cached variant, {count:,} organisations through one profile (system_user_org); shipped configuration",
                 "-", "<= 16 KiB", f"{per:.1f} KiB", "-", "-", "met" if per <= 16 else "missed",
                 f"Benchmarks/suite --only variants ((VmRSS after {count:,} variants - VmRSS before) / {count:,})")
        base = median([run.get("rps", 0) for run in results["base"]])
        cached = median([run.get("rps", 0) for run in results["variant"]])
        self.row("requests/s for a cached variant (?system_user_org=), keep-alive, 64 connections; shipped configuration",
                 "the profile's own token, same daemon and load", ">= 0.9x", f"{cached:,.0f} rps", f"{base:,.0f} rps", f"{cached / base:.2f}",
                 "met" if cached >= 0.9 * base else "missed", f"Benchmarks/suite --only variants (uds-load -c 64 -d {self.arguments.seconds})")
        self.notes.append(f"delegation: VmRSS {before:.0f} KiB before, {after:.0f} KiB after {count:,} variants; "
                          f"{len(fetched):,} organisations fetched, {sum(fetched.values()):,} tokens; daemon CPU per request "
                          f"{median([run['cpu_us'] for run in results['variant']]):.1f} µs for the variant, "
                          f"{median([run['cpu_us'] for run in results['base']]):.1f} µs for the base token")

    # -- start-up ----------------------------------------------------------------------------------

    def ready(self):
        log("start to READY=1")
        samples = []
        for _ in range(max(5, self.arguments.rounds)):
            self.emulator.reset()
            daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, 1)
            samples.append(daemon.ready_after * 1000)
            daemon.stop()
        value = median(samples)
        self.row("start to `READY=1`, emulator local, 1 profile (its first token fetched)", "-", "<= 150 ms",
                 f"{value:.0f} ms", "-", "-", "met" if value <= 150 else "missed",
                 "Benchmarks/suite (spawn of `serve` to READY=1 on NOTIFY_SOCKET, median of " + str(len(samples)) + ")")
        self.notes.append("start to READY=1, ms: " + ", ".join(f"{sample:.0f}" for sample in samples))

    def restore(self):
        log("restart with upstream down: tokens kept in the file descriptor store")
        self.emulator.reset()
        daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, 1)
        cold_ready = daemon.ready_after * 1000
        stored = daemon.wait_stored()
        if stored is None:
            daemon.stop()
            raise RuntimeError("the daemon stored no tokens with FDSTORE=1")
        # Upstream down from here on: every token call and exchange refused.
        self.emulator.call("POST", "/_emulator/faults/token", {"status": 503, "count": 100000})
        self.emulator.call("POST", "/_emulator/faults/exchange", {"status": 503, "count": 100000})
        asked = self.emulator.stats()["token_requests"]
        to_first, to_ready = [], []
        for _ in range(max(5, self.arguments.rounds)):
            # A restart as systemd makes it: the old daemon stopped (it stores its tokens once
            # more as it goes), the new one started with what it stored; until a client gets 200.
            started = time.monotonic()
            final = daemon.stop(keep_store=True)
            if final is not None:
                os.close(stored)
                stored = final
            daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, 1, wait_ready=False, stored_fd=stored)
            status = 0
            while status != 200:
                try:
                    status = uds_get(daemon.socket_path, "/v1/token/demo")
                except OSError:
                    time.sleep(0.0005)
            to_first.append((time.monotonic() - started) * 1000)
            to_ready.append(daemon.wait_ready(timeout=30) * 1000)
        daemon.stop()
        os.close(stored)
        fetched = self.emulator.stats()["token_requests"] - asked
        self.emulator.reset()
        first = median(to_first)
        self.row("`systemctl restart` to the first 200, upstream down (the token restored from systemd's file descriptor store)", "-", "<= 100 ms",
                 f"{first:.0f} ms", "-", "-", "met" if first <= 100 and fetched == 0 else "missed",
                 f"Benchmarks/suite --only restore (SIGTERM to the old daemon, the new one started with the memfd it stored as LISTEN_FDS names it, until GET /v1/token/demo gives 200; median of {len(to_first)}; token calls meanwhile: {fetched})")
        ready = median(to_ready)
        self.row("start to `READY=1` with every token restored, upstream down", "cold start, upstream up (first token fetched)", "stated",
                 f"{ready:.0f} ms", f"{cold_ready:.0f} ms", f"{ready / cold_ready:.2f}", "stated",
                 "Benchmarks/suite --only restore (spawn of `serve` to READY=1 on NOTIFY_SOCKET)")
        self.notes.append("restart to first 200 with upstream down, ms: " + ", ".join(f"{sample:.0f}" for sample in to_first))

    # -- a cold profile under a thundering herd ------------------------------------------------

    def cold(self):
        log("cold profile, 1,000 concurrent requests")
        self.emulator.reset()
        # The first token fetch is held 1.5 s, so that all requests arrive while it is in flight.
        self.emulator.call("POST", "/_emulator/faults/token", {"delay_ms": 1500, "count": 1})
        daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, 1, wait_ready=False)
        try:
            daemon.wait_listening()
            output = subprocess.run([self.arguments.uds_load, "-s", daemon.socket_path, "-p", "/v1/token/demo", "-c", "1000", "-o"],
                                    capture_output=True, text=True)
            figures = {key: float(value) for key, value in re.findall(r"(\w+)=([0-9.]+)", output.stdout)}
            stats = self.emulator.stats()
        finally:
            daemon.stop()
        answered = int(figures.get("requests", 0))
        errors = int(figures.get("errors", 0))
        token_calls, exchanges = stats["token_requests"], stats["exchange_requests"]
        verdict = "met" if (token_calls, exchanges, errors, answered) == (1, 1, 0, 1000) else "missed"
        self.row("cold profile, 1,000 concurrent requests", "-", "exactly 1 token call and 1 exchange; every request answered",
                 f"{token_calls} token call, {exchanges} exchange; {answered} answered 200, {errors} failed", "-", "-", verdict,
                 "Benchmarks/suite (uds-load -c 1000 -o while the first fetch is held 1.5 s)")

    # -- many profiles refreshing -------------------------------------------------------------

    def refreshing(self):
        count = self.arguments.profiles
        lifetime = self.arguments.lifetime
        window = self.arguments.window
        log(f"{count} profiles refreshing: tokens live {lifetime} s, watched for {window} s")
        self.emulator.reset()
        self.emulator.call("PUT", "/_emulator/settings", {"token_lifetime": lifetime, "altinn_token_lifetime": lifetime})
        daemon = Daemon(self.broker, self.work, self.emulator, self.key_file, count, extra_refresh="  min_valid_seconds: 5")
        try:
            start_cpu = cpu_seconds(daemon.process.pid)
            start_calls = self.emulator.stats()["exchange_requests"]
            per_second = []
            previous = start_calls
            for _ in range(window):
                time.sleep(1)
                now = self.emulator.stats()["exchange_requests"]
                per_second.append(now - previous)
                previous = now
            cpu = cpu_seconds(daemon.process.pid) - start_cpu
            refreshes = previous - start_calls
            failing = subprocess.run(["curl", "-s", "--unix-socket", daemon.socket_path, "http://localhost/readyz"], capture_output=True, text=True).stdout
        finally:
            daemon.stop()
            self.emulator.call("PUT", "/_emulator/settings", {"token_lifetime": 120, "altinn_token_lifetime": 1800})
        busy = [value for value in per_second if value]
        peak = max(per_second) if per_second else 0
        spread = len(busy)
        per_refresh = cpu / refreshes * 1000 if refreshes else float("nan")
        self.row(f"{count} profiles refreshing", "-", "CPU time per refresh stated; refreshes spread, not in bursts",
                 f"{per_refresh:.2f} ms CPU per refresh ({refreshes} refreshes in {window} s); busiest second {peak}, refreshes in {spread} of {window} s",
                 "-", "-", "stated",
                 f"Benchmarks/suite (tokens of {lifetime} s; daemon CPU from /proc over {window} s / exchanges counted by the emulator)")
        self.notes.append(f"refreshes per second over {window} s: " + " ".join(str(value) for value in per_second))
        self.notes.append("readyz at the end: " + failing.strip()[:200])

    # -- report ----------------------------------------------------------------------------------

    def report(self):
        cpu = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as info:
                for line in info:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        curl = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
        lines = [
            "# Benchmarks",
            "",
            f"Written by `Benchmarks/suite` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every comparison ran side by side",
            f"in the same run, alternating A and B, median of {self.arguments.rounds} rounds.",
            "",
            "Every row measures the daemon in the shipped configuration (`config/broker.example.yaml`: log level info, audit",
            "lines on, `audit.on_overflow: drop`), in systemd's log format (`JOURNAL_STREAM` set), with its standard output and",
            "error on a pipe that a reader drains as fast as lines come, as journald does. The rows marked \"for comparison",
            "only\" run it at `--log-level error`, which turns the audit lines off.",
            "",
            f"Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, "
            f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB. "
            f"Broker: release build, static Swift standard library (`Benchmarks/suite` builds it as the systemd unit's binary is built). "
            f"References: {nginx}, {curl}, {openssl}.",
            "",
            "| measure | against | target | figure | reference | ratio | verdict | command |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        lines += ["", "## Details", ""] + [f"- {note}" for note in self.notes] + [""]
        analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
        if os.path.exists(analysis):
            with open(analysis) as file:
                lines += [file.read()]
        text = "\n".join(lines)
        with open(self.arguments.out, "w") as file:
            file.write(text)
        print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--uds-load", required=True)
    parser.add_argument("--spawn-time", required=True)
    parser.add_argument("--signatures", required=True, help="the BrokerBenchmarks executable")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--organisations", type=int, default=1000)
    parser.add_argument("--lifetime", type=int, default=60)
    parser.add_argument("--window", type=int, default=75)
    parser.add_argument("--only", default="", help="comma-separated: http,gateway,signatures,token,memory,footprint,variants,ready,restore,cold,refresh")
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--deb", default="", help="the package, for the footprint rows")
    parser.add_argument("--image", default="", help="the image's tag, for the footprint rows")
    arguments = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    suite = Suite(arguments)
    chosen = [name for name in arguments.only.split(",") if name] or ["http", "gateway", "signatures", "token", "memory", "footprint", "variants", "ready", "restore", "cold", "refresh"]
    steps = {"http": suite.http, "gateway": suite.gateway, "signatures": suite.signatures, "token": suite.token_command, "memory": suite.memory, "footprint": suite.footprint, "variants": suite.variants,
             "ready": suite.ready, "restore": suite.restore, "cold": suite.cold, "refresh": suite.refreshing}
    try:
        for name in chosen:
            steps[name]()
        suite.report()
    finally:
        suite.close()


if __name__ == "__main__":
    main()
