"""What the check scripts share (scripts/check-monitoring, scripts/check-package): ports on loopback, HTTP
GETs, waiting for a condition, and process groups started and stopped together."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, seconds, who):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    sys.exit(f"{who}: {what} did not happen within {seconds} s")


def start(cmd, env, log, **popen):
    """Starts cmd in its own process group (so stop() also reaches anything it forks)."""
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen)


def stop(procs):
    """SIGTERM to every group, then SIGKILL to any still there after 10 s; returns their exit codes."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=10))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            codes.append(p.wait())
    return codes
