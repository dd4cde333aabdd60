"""One farm up, down or reload at a time: whoever comes second waits and says for what;
the supervisor, which must not wait, skips its round."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from rustfarm.cli.lifecycle_lock import exclusively
from tests.support.farm import wait_until

HOLDER = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from rustfarm.cli.lifecycle_lock import exclusively
    root, release = Path(sys.argv[1]), Path(sys.argv[2])
    with exclusively(root, "farm up"):
        print("held", flush=True)
        while not release.exists():
            time.sleep(0.05)
    """)


def hold(tmp_path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "state"),
                               str(tmp_path / "release")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_command_waits_for_the_first_and_names_it(tmp_path, capsys):
    holder = hold(tmp_path)
    order = []

    def second():
        with exclusively(tmp_path / "state", "farm down") as held:
            order.append(("down", held, (tmp_path / "release").exists()))

    waiting = threading.Thread(target=second)
    waiting.start()
    wait_until(lambda: "waiting for" in capsys.readouterr().out or None, 10,
               "the second command did not say it waits")
    assert order == []
    (tmp_path / "release").touch()
    waiting.join(10)
    assert holder.wait(10) == 0
    # It held the lock only once the first was told to let it go.
    assert order == [("down", True, True)]


def test_the_waiting_line_names_the_holder(tmp_path, capsys):
    holder = hold(tmp_path)
    threading.Timer(0.5, (tmp_path / "release").touch).start()
    with exclusively(tmp_path / "state", "farm down"):
        pass
    holder.wait(10)
    assert f"waiting for farm up (pid {holder.pid}) to finish" in capsys.readouterr().out


def test_the_supervisor_skips_its_round_while_another_holds_the_lock(tmp_path):
    holder = hold(tmp_path)
    try:
        with exclusively(tmp_path / "state", "the supervisor", wait=False) as held:
            assert held is False
    finally:
        (tmp_path / "release").touch()
        holder.wait(10)
    with exclusively(tmp_path / "state", "the supervisor", wait=False) as held:
        assert held is True
