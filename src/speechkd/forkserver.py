"""`speechkd forkserver --socket PATH`: start pipeline runs by forking a process that has imported everything.

Why: a pipeline is ~80 short runs, and each fresh `speechkd <stage>` process spends about 2.5 s before and after
its work (importing torch, the stage, torch's compiler that torch.optim pulls in at the first optimizer, and
tearing torch down): 3-4 minutes of CPU on the embedded profile. The server imports all of it once; each run is
a fork of it, so a run costs what it computes.

Protocol (one request per connection, used by scripts/lib/forkrun.py): the client sends one JSON line
{"argv": [stage, --config, ...], "log": path, "cwd": dir, "env": {...}}; the server forks a child that takes
that working directory and environment, writes stdout and stderr to `log`, runs `speechkd.cli.main(argv)` and
exits with its code; the server answers with one line, the exit code, when the child has ended.

The server stays single-threaded (a fork copies only the calling thread, so no lock can be held by a thread
the child does not have) and never runs a tensor operation. Each child sets torch's thread count from the
client's OMP_NUM_THREADS: torch read the variable when the server imported it.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback

import torch


def _preload() -> None:
    from . import cli
    for module, _ in cli.STAGES.values():
        importlib.import_module(module)
    import sacremoses  # noqa: F401  imported when scoring
    import torch._dynamo  # noqa: F401  imported by torch.optim at its first use: 1.2 s per process otherwise
    import torch.utils.tensorboard  # noqa: F401  imported by runs that log to TensorBoard


def _child(request: dict, server_fds: list[int], default_threads: int) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for fd in server_fds:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # torch read OMP_NUM_THREADS when the server imported it: apply the client's value (or torch's default)
        threads = os.environ.get("OMP_NUM_THREADS", "")
        torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0 else default_threads)
        sys.argv = [os.path.join(os.path.dirname(sys.executable), "speechkd"), *request["argv"]]  # for provenance
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        from .cli import main
        try:
            code = main(request["argv"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001  anything the run raises ends up in its log and exit code
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code if isinstance(code, int) else 1)


def serve(socket_path: str) -> int:
    _preload()
    default_threads = torch.get_num_threads()
    gc.freeze()  # the imported objects: children's collections skip them, and do not copy their pages
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".tmp")
    os.rename(socket_path + ".tmp", socket_path)  # clients see the socket only once it is bound
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    wake_r, wake_w = os.pipe()  # SIGCHLD writes a byte here, so select() wakes when a child ends
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector.register(wake_r, selectors.EVENT_READ)
    parent = os.getppid()
    try:
        while os.getppid() == parent:  # the pool that started us is gone: stop too
            for key, _ in selector.select(timeout=5.0):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    with conn.makefile("r") as lines:
                        request = json.loads(lines.readline())
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        _child(request, [listener.fileno(), conn.fileno(), wake_r, wake_w, selector.fileno(),
                                         *(c.fileno() for c in children.values())], default_threads)
                    children[pid] = conn
                else:
                    os.read(wake_r, 512)
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                conn = children.pop(pid)
                try:
                    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass  # the client is gone (interrupted); nothing waits for this code
                conn.close()
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        os.unlink(socket_path)
    return 0
