#!/usr/bin/env python3
"""A sink that tells a reset from a clean end, for the stop tests.

Node cannot be this observer: libuv reports a hang-up that arrives during a
partial read as EOF, so a Node reader sometimes takes a reset for a clean
end. Here every read is a plain recv(): EOF is b'', a reset is an exception.

Usage: reset-sink.py  -> prints {"event":"listening","port":P}, then one
{"event":"done","recvBytes":N,"error":"ECONNRESET"|null} per connection.
"""
import errno
import json
import socket
import sys
import threading


def report(**fields):
    print(json.dumps(fields), flush=True)


def serve(conn):
    received, error = 0, None
    with conn:
        while True:
            try:
                data = conn.recv(1 << 16)
            except OSError as e:
                error = errno.errorcode.get(e.errno, str(e))
                break
            if not data:
                break
            received += len(data)
    report(event="done", recvBytes=received, error=error)


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
report(event="listening", port=listener.getsockname()[1])
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
