#!/usr/bin/env python3
"""Listens in on live calls the way the console does, for the benchmarks: waits for N active calls on the
admin API, opens GET /calls/{id}/listen on each (a WebSocket, by hand: the standard library has none),
reads as fast as it can until the calls end or it is stopped (SIGTERM), and prints one JSON line: messages
and bytes heard, per side.
    scripts/listen-in.py ADMIN_HOST:PORT N [TOKEN]
"""
import base64
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request

admin, n = sys.argv[1], int(sys.argv[2])
token = sys.argv[3] if len(sys.argv) > 3 else None
headers = {"Authorization": "Bearer " + token} if token else {}


def active_calls():
    req = urllib.request.Request("http://%s/calls" % admin, headers=headers)
    calls = json.load(urllib.request.urlopen(req, timeout=5))["calls"]
    return [c for c in calls if c.get("state") == "active"]


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def listen(call, heard):
    host, port = admin.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    upgrade = ("GET /calls/%s/listen?carrier=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (call["call_id"], call["carrier"], admin, key, auth))
    sock.sendall(upgrade.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    if not head.startswith(b"HTTP/1.1 101"):
        heard["refused"] += 1
        return
    try:
        while True:
            b0, b1 = read_exact(sock, 2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", read_exact(sock, 2))[0]
            elif length == 127:
                length = struct.unpack(">Q", read_exact(sock, 8))[0]
            payload = read_exact(sock, length)
            opcode = b0 & 0x0F
            if opcode == 8:
                break
            if opcode == 2 and payload:  # 100 ms of one side
                side = "caller" if payload[0] == 0 else "agent"
                heard[side + "_frames"] += 1
                heard[side + "_bytes"] += len(payload) - 1
    except (EOFError, OSError):
        pass


for _ in range(300):
    calls = active_calls()
    if len(calls) >= n:
        break
    time.sleep(0.2)
keys = ["refused", "caller_frames", "caller_bytes", "agent_frames", "agent_bytes"]
each = [dict.fromkeys(keys, 0) for _ in calls[:n]]


def report(*_):
    total = {k: sum(h[k] for h in each) for k in keys}
    total["listeners"] = len(each)
    print(json.dumps(total), flush=True)
    os._exit(0)


signal.signal(signal.SIGTERM, report)
threads = [threading.Thread(target=listen, args=(c, h), daemon=True) for c, h in zip(calls, each)]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    time.sleep(0.2)
report()
