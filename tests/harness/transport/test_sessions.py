"""Long-lived sessions (``Transport.start``), the same contract on both transports: lines
in and out across many requests, a timeout that kills the whole process group, and a
server that quits reported as such."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.transport import LocalTransport, SSHTransport, Transport
from harness.errors import CommandTimeout, ConnectError

SERVER = textwrap.dedent("""
    import subprocess, sys
    for line in sys.stdin:
        word = line.strip()
        if word == "quit":
            print("leaving", file=sys.stderr, flush=True)
            sys.exit(3)
        if word == "hang":
            child = subprocess.Popen(["sleep", "60"])
            with open(sys.argv[1], "w") as f:
                f.write(str(child.pid))
            child.wait()
        print("echo", word, flush=True)
        print("note", word, file=sys.stderr, flush=True)
        print("end", flush=True)
        print("-- end of note --", file=sys.stderr, flush=True)  # written after stdout's "end"
""")


@pytest.fixture(params=["local", "ssh"])
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Transport:
    if request.param == "local":
        t: Transport = LocalTransport(str(tmp_path / "work"))
    else:
        h = request.getfixturevalue("ssh_lab")(1)[0]
        h.start()
        t = SSHTransport(h.address, workdir=str(tmp_path / "work"), port=h.port, user=h.user, key_file=str(h.key),
                         known_hosts=str(h.known_hosts), ssh_config=None)
    t.connect()
    yield t
    t.close()


def is_end(line: str) -> bool:
    return line.strip() == "end"


def start(t: Transport, tmp_path: Path):  # noqa: ANN201
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return t.start([sys.executable, str(script), str(tmp_path / "child.pid")])


def test_requests_and_answers_over_one_process(transport: Transport, tmp_path: Path) -> None:
    s = start(transport, tmp_path)
    for word in ("one", "two words", "три"):
        s.send_line(word)
        answer = s.read_until(is_end, timeout_s=30, stderr_end=b"-- end of note --")
        assert [line.rstrip("\n") for line in answer.lines] == [f"echo {word}", "end"]
        assert answer.stderr.strip() == f"note {word}"
        assert answer.duration_s < 30
    s.close()


def test_a_timeout_kills_the_server_and_its_children(transport: Transport, tmp_path: Path) -> None:
    s = start(transport, tmp_path)
    s.send_line("hang")
    with pytest.raises(CommandTimeout, match="process group killed"):
        s.read_until(is_end, timeout_s=2)
    pid = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the server's child {pid} survived the timeout")


def test_a_server_that_quits_is_reported_with_its_stderr(transport: Transport, tmp_path: Path) -> None:
    s = start(transport, tmp_path)
    s.send_line("quit")
    with pytest.raises(ConnectError, match="ended before answering: leaving"):
        s.read_until(is_end, timeout_s=30)
    assert s.ended


BEATS = textwrap.dedent("""
    import sys, time
    for line in sys.stdin:
        word = line.strip()
        if word == "count":  # answers once three heartbeats have come
            start, beats = time.monotonic(), 0
            print("counting", flush=True)
        elif word == "beat":
            beats += 1
            if beats == 3:
                print("three beats in %.2f s" % (time.monotonic() - start), flush=True)
        elif word == "slow":  # starts at once, answers after a second
            print("started", flush=True)
            time.sleep(1.0)
            print("finished", flush=True)
""")


def test_a_heartbeat_is_sent_while_the_read_waits(transport: Transport, tmp_path: Path) -> None:
    script = tmp_path / "beats.py"
    script.write_text(BEATS)
    s = transport.start([sys.executable, str(script)])
    s.send_line("count")
    answer = s.read_until(lambda line: line.startswith("three"), timeout_s=20,
                          heartbeat=(0.3, lambda: s.send_line("beat")))
    assert answer.lines[0].strip() == "counting"
    took = float(answer.lines[-1].split()[3])
    assert 0.5 < took < 1.5 and answer.duration_s < 2.0  # beats at 0.3, 0.6, 0.9 s
    s.close()


def test_a_line_can_restart_the_clock(transport: Transport, tmp_path: Path) -> None:
    script = tmp_path / "beats.py"
    script.write_text(BEATS)
    s = transport.start([sys.executable, str(script)])
    s.send_line("slow")
    answer = s.read_until(lambda line: line.strip() == "finished", timeout_s=0.6,
                          restart=lambda line: 10.0 if line.strip() == "started" else None)
    assert [line.strip() for line in answer.lines] == ["started", "finished"] and answer.duration_s > 0.9
    s.send_line("slow")
    with pytest.raises(CommandTimeout, match="after 0.6 s"):  # without the restart: 0.6 s is too short
        s.read_until(lambda line: line.strip() == "finished", timeout_s=0.6)
