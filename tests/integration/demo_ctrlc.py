#!/usr/bin/env python3
"""./scripts/demo as a person runs it: in a terminal (a pseudo-terminal here),
until it says the pipeline ran and reconciled, then Ctrl-C. Fails when a
service is not ready, the reconciliation does not pass, Ctrl-C does not stop
it within 60 s, or a service it started is still running afterwards."""
import os
import pty
import select
import subprocess
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pid, fd = pty.fork()
if pid == 0:
    os.chdir(root)
    os.execvp("scripts/demo", ["scripts/demo"])

out = b""


def read_until(marker, seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 1)
        if not r:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        out += data
        if marker and marker in out:
            return True
    return False


def fail(why):
    sys.stdout.write(out.decode(errors="replace"))
    print("\ndemo_ctrlc: FAIL: " + why)
    try:
        os.kill(pid, 9)
    except OSError:
        pass
    sys.exit(1)


if not read_until(b"press Ctrl-C", 900):
    fail("the demo did not reach 'press Ctrl-C'")
text = out.decode(errors="replace")
if "NOT READY" in text:
    fail("a service was not ready")
if "RECONCILED: every check passes" not in text:
    fail("the reconciliation did not pass")
t0 = time.time()
os.write(fd, b"\x03")
read_until(None, 60)  # returns early once the terminal closes
done = 0
while done == 0 and time.time() - t0 < 60:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        time.sleep(0.1)
if done == 0:
    fail("Ctrl-C did not stop the demo within 60 s")
left = subprocess.run(["pgrep", "-f", root + "/build-release/bin/"], capture_output=True, text=True).stdout
if left.strip():
    fail("services still running after Ctrl-C: " + left)
sys.stdout.write(out.decode(errors="replace")[-2000:])
print("\ndemo_ctrlc: ok: reconciled, stopped %.1f s after Ctrl-C, nothing left running" % (time.time() - t0))
