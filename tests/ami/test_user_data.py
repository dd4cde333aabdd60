"""The user-data format of ami/README.md, checked with the boot script's own
parser (``rustfarm-boot --check-user-data``); no Docker needed."""

from __future__ import annotations

import re
import subprocess

import pytest

from . import harness

README = harness.REPO_ROOT / "ami" / "README.md"
VALID = (
    "#rustfarm-worker v1\n"
    "image=registry.example.com:5000/rustfarm/worker-mipsel:2026-11-21-3f9c2a1b\n"
    "master=master.rustfarm.example.com\n"
    "port=9989\n"
    "name=ec2-mipsel-1\n"
    "password=correct horse battery staple\n"
)


def check(text: str, tmp_path) -> subprocess.CompletedProcess:
    env, _, _ = harness.boot_script_env(tmp_path)
    return subprocess.run([str(harness.BOOT_SCRIPT), "--check-user-data", "-"],
                          input=text, capture_output=True, text=True, env=env, timeout=30)


def test_readme_example_parses(tmp_path):
    example = re.search(r"```text\n(#rustfarm-worker v1\n.*?)```", README.read_text(), re.S)
    assert example, "ami/README.md should show a user-data example in a ```text block"
    checked = check(example.group(1), tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_valid_user_data_is_read_without_printing_the_password(tmp_path):
    checked = check(VALID, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        "image=registry.example.com:5000/rustfarm/worker-mipsel:2026-11-21-3f9c2a1b",
        "master=master.rustfarm.example.com",
        "port=9989",
        "name=ec2-mipsel-1",
        "password=(28 characters)",
    ]
    assert "horse" not in checked.stdout + checked.stderr


def test_comments_blank_lines_crlf_and_optional_keys(tmp_path):
    text = (VALID.replace("port=9989\n", "# the master's worker port\n\nport=9989\n")
            + "memory=6g\ncpus=1.5\npids_limit=4096\n").replace("\n", "\r\n")
    checked = check(text, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert {"port=9989", "memory=6g", "cpus=1.5", "pids_limit=4096",
            "password=(28 characters)"} <= set(checked.stdout.splitlines())


def test_values_are_never_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    password = f"$(touch {marker}) `touch {marker}` ;touch {marker}"
    checked = check(VALID.replace("correct horse battery staple", password), tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert not marker.exists()
    assert f"password=({len(password)} characters)" in checked.stdout


@pytest.mark.parametrize("text, problem", [
    ("", "line 1: user-data must start with the line '#rustfarm-worker v1'"),
    (VALID.replace("#rustfarm-worker v1", "#!/bin/bash"),
     "line 1: user-data must start with the line '#rustfarm-worker v1'"),
    (VALID.replace("v1", "v2", 1),
     "line 1: user-data version 'v2' is not supported; this AMI reads '#rustfarm-worker v1'"),
    (VALID + "colour=blue\n", "line 7: unknown key 'colour'"),
    (VALID + "IMAGE=x\n", "line 7: unknown key 'IMAGE'"),
    (VALID + "just some words\n", "line 7: not a KEY=VALUE line"),
    (VALID + "port=9990\n", "line 7: key 'port' is given twice"),
    (VALID.replace("name=ec2-mipsel-1\n", ""), "missing key 'name'"),
    (VALID.replace("image=registry.example.com:5000/", "image="),
     "key 'image' must be REGISTRY/REPOSITORY:TAG"),
    (VALID.replace(":2026-11-21-3f9c2a1b", ""), "key 'image' must be REGISTRY/REPOSITORY:TAG"),
    (VALID.replace("port=9989", "port=9989 "), "key 'port' must be a TCP port number"),
    (VALID.replace("port=9989", "port=0"), "key 'port' must be a TCP port number"),
    (VALID.replace("master=master.rustfarm.example.com", "master=http://m"),
     "key 'master' must be a host name or an IPv4 address"),
    (VALID.replace("name=ec2-mipsel-1", "name=a b"), "key 'name' must be 1-50 characters"),
    (VALID.replace("password=correct horse battery staple", "password="),
     "key 'password' must be 1-1024 characters without control characters"),
    (VALID + "memory=lots\n", "key 'memory' must be a whole number"),
    (VALID + "cpus=0\n", "key 'cpus' must be a positive number"),
], ids=["empty", "no-marker", "version", "unknown-key", "key-case", "no-equals", "twice",
        "missing", "image-without-registry", "image-without-tag", "port-space", "port-zero",
        "master-url", "name-space", "empty-password", "memory", "cpus"])
def test_invalid_user_data_is_refused_with_a_clear_reason(tmp_path, text, problem):
    checked = check(text, tmp_path)
    assert checked.returncode == 1
    assert f"rustfarm-boot: user-data: {problem}" in checked.stderr
    assert "horse" not in checked.stderr


def test_check_mode_never_powers_off(tmp_path):
    env, poweroff, logger = harness.boot_script_env(tmp_path)
    subprocess.run([str(harness.BOOT_SCRIPT), "--check-user-data", "-"],
                   input="nonsense", capture_output=True, text=True, env=env, timeout=30)
    assert poweroff.calls() == [] and logger.calls() == []
