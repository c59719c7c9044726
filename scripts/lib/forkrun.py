"""forkrun.py SOCKET LOG ARGV...: run `speechkd ARGV...` as a fork of the server at SOCKET (`speechkd forkserver`,
src/speechkd/forkserver.py), its output to LOG, in this directory and environment; exit with its exit code.
Standard library only, run with `python -S`: it starts in milliseconds."""
import json
import os
import socket
import sys


def main() -> int:
    path, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    request = {"argv": argv, "log": os.path.abspath(log), "cwd": os.getcwd(), "env": dict(os.environ)}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            conn.sendall((json.dumps(request) + "\n").encode())
            with conn.makefile("r") as reply:
                line = reply.readline()
    except OSError as e:
        with open(log, "a") as f:
            print(f"forkrun: no fork server at {path}: {e}", file=f)
        return 1
    if not line:
        with open(log, "a") as f:
            print(f"forkrun: the fork server at {path} ended before the run did", file=f)
        return 1
    code = int(line)
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
