"""A supervisor that keeps a listening socket across restarts, as systemd
socket activation does: it binds 127.0.0.1:PORT once, starts the server
with the socket as descriptor 3 (LISTEN_FDS=1, LISTEN_PID set in the
child), and every INTERVAL seconds starts a new generation on the same
socket, waits for its "listening on" line, then sends the old one SIGTERM
and waits for it to exit (it stops accepting and drains). The socket is
never closed in between, so no connection can be refused.

    python3 .ci/handover.py PORT GENERATIONS INTERVAL OUTDIR -- SERVER ARGS...

Each generation's output goes to OUTDIR/gen-N.out ({gen} in the server's
arguments becomes N). Exits non-zero if a generation failed to start or
exited with an error.
"""

import os
import signal
import socket
import subprocess
import sys
import time


def start(cmd, fd, out_path, children):
    def child_setup():
        # Descriptor 3, as sd_listen_fds(3) expects, and the variables that
        # name this process as the one meant.
        os.dup2(fd, 3)
        os.set_inheritable(3, True)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    out = open(out_path, "w")
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=child_setup, close_fds=False
    )
    children.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(out_path) as f:
            if any(line.startswith("listening on") for line in f):
                return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"generation did not start: see {out_path}")


def main():
    sep = sys.argv.index("--")
    port, generations, interval, outdir = sys.argv[1:sep]
    server = sys.argv[sep + 1:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(port)))
    sock.listen(1024)
    fd = sock.fileno()
    status = 0
    children = []
    # Killed itself (CI's cleanup sends SIGTERM), it takes its generations
    # with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        current = None
        for gen in range(1, int(generations) + 1):
            cmd = [a.replace("{gen}", str(gen)) for a in server]
            new = start(cmd, fd, os.path.join(outdir, f"gen-{gen}.out"), children)
            print(f"generation {gen} listening", flush=True)
            if current is not None:
                current.send_signal(signal.SIGTERM)
                code = current.wait(timeout=60)
                print(f"generation {gen - 1} exited with {code}", flush=True)
                status = status or code
            current = new
            time.sleep(float(interval))
        current.send_signal(signal.SIGTERM)
        code = current.wait(timeout=60)
        print(f"generation {generations} exited with {code}", flush=True)
        sys.exit(status or code)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


if __name__ == "__main__":
    main()
