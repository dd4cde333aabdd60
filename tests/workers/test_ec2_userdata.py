"""User-data for EC2 worker instances: what the master writes, the AMI's boot script reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rustfarm.userdata import (MARKER, UserDataError, WorkerUserData, parse_user_data,
                                       render_user_data)

AMI = Path(__file__).resolve().parents[2] / "ami"
BOOT_SCRIPT = AMI / "rustfarm-boot"
README = AMI / "README.md"

VALID = dict(image="registry.example.com/rustfarm/worker:2026-11-21", master="10.0.0.5",
             port=9989, name="ec2-mipsel-1", password="s3cret pass=with;$(shell) 'chars'")


def test_render_then_parse_gives_the_same_fields():
    text = render_user_data(**VALID)
    assert text.startswith(MARKER + "\n")
    assert parse_user_data(text) == WorkerUserData(**VALID)
    assert parse_user_data(text.encode()) == WorkerUserData(**VALID)


def test_optional_keys_round_trip():
    text = render_user_data(**VALID, memory="4g", cpus=1.5, pids_limit=4096, max_lifetime=21600)
    parsed = parse_user_data(text)
    assert (parsed.memory, parsed.cpus, parsed.pids_limit, parsed.max_lifetime) \
        == ("4g", "1.5", 4096, 21600)


CACHE = dict(cache_bucket="farm-cache", cache_prefix="rustfarm/main/", cache_region="eu-west-1")


def test_the_compile_cache_keys_round_trip():
    parsed = parse_user_data(render_user_data(**VALID, **CACHE,
                                              cache_endpoint="http://127.0.0.1:9000",
                                              cache_read_only=True))
    assert (parsed.cache_bucket, parsed.cache_prefix, parsed.cache_region,
            parsed.cache_endpoint, parsed.cache_read_only) \
        == ("farm-cache", "rustfarm/main/", "eu-west-1", "http://127.0.0.1:9000", True)
    assert parse_user_data(render_user_data(**VALID, **CACHE)).cache_read_only is False
    assert "cache_read_only" not in render_user_data(**VALID, **CACHE)


@pytest.mark.parametrize("cache, problem", [
    ({"cache_bucket": "farm-cache"}, "needs 'cache_prefix', 'cache_region' too"),
    ({**CACHE, "cache_bucket": "Farm_Cache"}, "key 'cache_bucket' must be an S3 bucket name"),
    ({**CACHE, "cache_prefix": "rustfarm"}, "key 'cache_prefix' must be a key prefix"),
    ({**CACHE, "cache_prefix": "a/../b/"}, "key 'cache_prefix' must be a key prefix"),
    ({**CACHE, "cache_prefix": "/abs/"}, "key 'cache_prefix' must be a key prefix"),
    ({**CACHE, "cache_region": "europe"}, "key 'cache_region' must be an AWS region"),
    ({**CACHE, "cache_endpoint": "ftp://x"}, "key 'cache_endpoint' must be http"),
])
def test_compile_cache_values_the_boot_script_refuses_are_refused(cache, problem):
    with pytest.raises(UserDataError, match=re.escape(problem)):
        render_user_data(**VALID, **cache)
    text = MARKER + "\n" + "".join(f"{k}={v}\n" for k, v in {**VALID, **cache}.items())
    with pytest.raises(UserDataError, match=re.escape(problem)):
        parse_user_data(text)


@pytest.mark.skipif(not README.exists(), reason="ami/README.md is not in this checkout")
def test_the_readme_example_parses():
    example = re.search(r"```text\n(#rustfarm-worker v1\n.*?)```", README.read_text(), re.S)
    assert example, "ami/README.md shows a user-data example in a ```text block"
    parsed = parse_user_data(example.group(1))
    assert parsed.name and parsed.password


def test_password_is_hidden_from_repr_and_errors():
    assert VALID["password"] not in repr(parse_user_data(render_user_data(**VALID)))
    with pytest.raises(UserDataError) as error:
        render_user_data(**{**VALID, "password": "bad\x01password"})
    assert "bad" not in str(error.value).replace("key 'password'", "")


@pytest.mark.parametrize("field, value", [
    ("image", "rustfarm/worker:1"),              # no registry host
    ("image", "registry.example.com/worker"),    # no tag
    ("master", "bad host"),
    ("port", 0),
    ("name", ".hidden"),
    ("name", "x" * 51),
    ("password", ""),
    ("password", "two\nlines"),
    ("max_lifetime", 0),
    ("max_lifetime", 10_000_000),
])
def test_values_the_boot_script_refuses_are_refused(field, value):
    with pytest.raises(UserDataError, match=field):
        render_user_data(**{**VALID, field: value})


def test_values_are_kept_exactly():
    spaced = {**VALID, "password": " spaces = kept "}
    assert parse_user_data(render_user_data(**spaced)).password == " spaces = kept "
    with pytest.raises(UserDataError, match="port"):
        parse_user_data(render_user_data(**VALID).replace(f"port={VALID['port']}",
                                                          f"port={VALID['port']} "))


def test_parser_reports_every_problem():
    text = f"{MARKER}\nimage=nope\nport=70000\ncolour=blue\nport=1\n# comment\n\nnot a pair\n"
    with pytest.raises(UserDataError) as error:
        parse_user_data(text)
    message = str(error.value)
    for expected in ("unknown key 'colour'", "key 'port' is given twice", "not a KEY=VALUE",
                     "missing key 'master'", "key 'image'", "key 'port'"):
        assert expected in message


def test_parser_needs_the_format_line():
    with pytest.raises(UserDataError, match="must start with"):
        parse_user_data("image=x\n")


def test_crlf_and_missing_final_newline_are_accepted():
    text = render_user_data(**VALID).replace("\n", "\r\n").rstrip("\r\n")
    assert parse_user_data(text) == WorkerUserData(**VALID)


@pytest.mark.skipif(not BOOT_SCRIPT.exists() or not shutil.which("python3"),
                    reason="the AMI's boot script is not in this checkout")
def test_the_boot_script_accepts_what_the_master_writes():
    text = render_user_data(**VALID, memory="2g", max_lifetime=3600)
    checked = subprocess.run([str(BOOT_SCRIPT), "--check-user-data", "-"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    shown = dict(line.split("=", 1) for line in checked.stdout.splitlines())
    assert shown["image"] == VALID["image"]
    assert shown["master"] == VALID["master"]
    assert shown["port"] == str(VALID["port"])
    assert shown["name"] == VALID["name"]
    assert shown["memory"] == "2g"
    assert shown["max_lifetime"] == "3600"
    assert shown["password"] == f"({len(VALID['password'])} characters)"


@pytest.mark.skipif(not BOOT_SCRIPT.exists() or not shutil.which("python3"),
                    reason="the AMI's boot script is not in this checkout")
@pytest.mark.parametrize("text", [
    "image=x\n",
    f"{MARKER}\nimage=registry.example.com/w:1\nmaster=h\nport=1\nname=n\n",
    f"{MARKER}\nimage=w:1\nmaster=h\nport=1\nname=n\npassword=p\n",
])
def test_the_boot_script_and_the_parser_refuse_the_same_user_data(text):
    checked = subprocess.run([str(BOOT_SCRIPT), "--check-user-data", "-"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode != 0
    with pytest.raises(UserDataError):
        parse_user_data(text)
