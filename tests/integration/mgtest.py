"""Shared pieces of the integration tests: a check() that records failures,
free loopback ports, and a real redis-server in a temporary directory with
an append-only file fsynced on every write (so a kill -9 loses nothing it
acknowledged)."""
import os
import signal
import socket
import subprocess
import threading
import time

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def verdict(name):
    """The test's exit status: 1 with the count of failed checks, else 0."""
    if failures:
        print("%s: %d checks failed" % (name, len(failures)))
        return 1
    print("%s: all checks passed" % name)
    return 0


def spawn(args):
    """Start args with its stderr read by a thread into p.lines (so a test
    can wait for a log line without blocking on the pipe)."""
    p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    p.lines = []

    def pump():
        for line in p.stderr:
            p.lines.append(line)
    p.pump = threading.Thread(target=pump, daemon=True)
    p.pump.start()
    return p


def wait_until(cond, timeout=30):
    """True once cond() is, False after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def wait_line(p, text, timeout=30):
    """True once a line of p (from spawn()) contains text."""
    return wait_until(lambda: any(text in l for l in p.lines), timeout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--logfile",
             os.path.join(self.dir, "redis.log")])
        for _ in range(100):
            if self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.port)] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.stdout
