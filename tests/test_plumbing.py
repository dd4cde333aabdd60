"""The small shared pieces of rustfarm/plumbing.py: loopback hosts, a file's SHA-256,
deadlines, engine clients' arguments."""

from __future__ import annotations

import hashlib

import pytest

from rustfarm.plumbing import (DeadlinePassed, EngineError, client_args, connect, file_sha256,
                               is_loopback, url_host, wait_until)


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
    ("[::1]", True), ("", False), ("0.0.0.0", False), ("10.0.0.5", False),
    ("build2.internal", False)])
def test_which_hosts_are_this_machine_s_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("url, host", [
    ("tcp://127.0.0.1:2376", "127.0.0.1"), ("tcp://[::1]:2376", "::1"),
    ("ssh://farm@build2", "build2"), ("//127.0.0.1:5000", "127.0.0.1"),
    ("unix:///var/run/docker.sock", "")])
def test_a_url_s_host(url, host):
    assert url_host(url) == host


def test_waiting_ends_with_the_first_true_value_or_says_what_did_not_happen():
    answers = iter([None, 0, "found"])
    assert wait_until(lambda: next(answers), 5, "never", interval=0.01) == "found"
    with pytest.raises(DeadlinePassed, match="the engine did not answer within 0 s"):
        wait_until(lambda: False, 0.2, "the engine did not answer", interval=0.05)


def test_engine_clients_take_a_socket_path_tls_and_ssh(tmp_path):
    assert client_args("/var/run/docker.sock") == {"base_url": "unix:///var/run/docker.sock"}
    assert client_args("ssh://farm@build2")["use_ssh_client"] is True
    with pytest.raises(EngineError, match=f"no Docker engine answers at unix://{tmp_path}/no"):
        connect(f"unix://{tmp_path}/no.sock", timeout=2)


def test_a_file_s_sha256_is_hashlib_s_of_its_content(tmp_path):
    content = bytes(range(256)) * 5000          # over one block of reading
    (tmp_path / "file").write_bytes(content)
    assert file_sha256(tmp_path / "file") == hashlib.sha256(content).hexdigest()


def test_a_message_takes_at_most_a_screen():
    from rustfarm.progress import LINE_WIDTH, SCREEN_LINES, summarised
    # Different problems are all shown, in their order.
    assert summarised(["a.b: bad", "c: missing"]) == ["a.b: bad", "c: missing"]
    # Many different ones: a screen of them and how many more there are.
    lines = summarised(f"problem {chr(65 + i % 26) * (i // 26 + 1)}" for i in range(100))
    assert len(lines) == SCREEN_LINES and lines[-1] == "… and 81 more lines"
    # A line longer than a screen's width is cut, saying by how much.
    [long] = summarised(["x" * 100_000])
    assert len(long) < LINE_WIDTH and long.endswith("(99640 characters more)")
