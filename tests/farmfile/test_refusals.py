"""Values `farm check` refuses because they would break the farm later (or expose it):
each one line with file, line and key, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rustfarm.farmfile import FarmFileError, load, loads

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"

BASE = f"""\
farm:
  name: demo
workers:
  local: {{kind: local, count: 1}}
targets:
  x86_64-unknown-linux-gnu: {{pool: local}}
projects:
  hello: {{source: {EXAMPLE}}}
"""


def problems(path: Path, text: str) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        loads(textwrap.dedent(text), path)
    return [str(p) for p in caught.value.problems]


def with_lines(*lines: str, farm: str = "") -> str:
    """BASE with ``farm`` added under farm: and ``lines`` after it."""
    text = BASE.replace("  name: demo\n", "  name: demo\n" + farm)
    return text + "".join(line + "\n" for line in lines)


# -- the artifact store ----------------------------------------------------

@pytest.mark.parametrize("directory, why", [
    ("/", "/ is a system directory"),
    ("/etc", "/etc is a system directory"),
    ("/etc/ssl", "/etc/ssl is a system directory"),
    ("/tmp", "/tmp is a system directory"),
    ("/home", "/home is a system directory"),
    ("/var", "/var is a system directory"),
    ("/proc/self", "is a system directory"),
])
def test_a_system_directory_is_not_a_store(tmp_path, directory, why):
    config = tmp_path / "farm.yaml"
    found = problems(config, with_lines(f"artifacts: {{directory: {directory}}}"))
    assert len(found) == 1
    assert found[0].startswith(f"{config}:9: artifacts.directory: ")
    assert why in found[0] and "served to anyone without a login" in found[0]


def test_the_state_directory_and_what_holds_it_are_not_a_store(tmp_path):
    config = tmp_path / "farm.yaml"
    state = tmp_path / ".farm"
    for directory in (".", "", ".."):
        found = problems(config, with_lines(f"artifacts: {{directory: '{directory}'}}"))
        holder = (state / directory).resolve()
        assert found == [f"{config}:9: artifacts.directory: {holder} holds the state directory "
                         f"{state} (secrets, database): it is served to anyone without a login; "
                         "give a directory of its own (default: artifacts, in the state "
                         "directory)"]


def test_a_store_may_be_in_the_state_directory_but_not_its_secrets(tmp_path):
    for directory in ("secrets", "master", "workers/x", "sources"):
        found = problems(tmp_path / "farm.yaml",
                         with_lines(f"artifacts: {{directory: {directory}}}"))
        assert len(found) == 1 and "artifacts.directory" in found[0]
        assert "part of the farm's own state" in found[0]
    for directory in ("artifacts", "store/of/artifacts", "/srv/rustfarm/x"):
        farm = loads(with_lines(f"artifacts: {{directory: {directory}}}"), tmp_path / "farm.yaml")
        assert farm.artifacts.directory == (tmp_path / ".farm" / directory).resolve()


def test_the_directory_of_farm_yaml_is_not_a_store(tmp_path):
    config = tmp_path / "conf" / "farm.yaml"
    config.parent.mkdir()
    found = problems(config, with_lines("artifacts: {directory: ../conf}",
                                        farm=f"  state_dir: {tmp_path / 'state'}\n"))
    assert len(found) == 1
    assert f"artifacts.directory: {config.parent} holds farm.yaml's directory" in found[0]


def test_a_link_to_a_system_directory_is_not_a_store(tmp_path):
    (tmp_path / "store").symlink_to("/etc")
    found = problems(tmp_path / "farm.yaml",
                     with_lines(f"artifacts: {{directory: {tmp_path / 'store'}}}"))
    assert len(found) == 1 and "artifacts.directory: /etc is a system directory" in found[0]


# -- worker pools ------------------------------------------------------------

def pool_problems(tmp_path: Path, pool: str) -> list[str]:
    text = BASE.replace("  local: {kind: local, count: 1}", f"  local: {{kind: local, count: 1}}\n"
                                                             f"  box: {pool}")
    return problems(tmp_path / "farm.yaml", text)


def test_docker_cpus_within_what_docker_allows(tmp_path):
    cpus = os.cpu_count() or 1
    config = tmp_path / "farm.yaml"
    assert pool_problems(tmp_path, f"{{kind: docker, cpus: {cpus + 1}}}") == [
        f"{config}:5: workers.box.cpus: must be at most {cpus}, not {cpus + 1} "
        "(Docker allows 0.01 up to the machine's CPU count)"]
    assert pool_problems(tmp_path, "{kind: docker, cpus: 0.001}") == [
        f"{config}:5: workers.box.cpus: must be at least 0.01, not 0.001 "
        "(Docker allows 0.01 up to the machine's CPU count)"]
    farm = loads(BASE.replace("count: 1}", f"count: 1}}\n  box: {{kind: docker, cpus: {cpus}}}"),
                 config)
    assert farm.pools["box"].cpus == cpus


def test_docker_memory_of_at_least_dockers_minimum(tmp_path):
    for memory in ("1b", "5m", "6000k", "0"):
        assert pool_problems(tmp_path, f"{{kind: docker, memory: '{memory}'}}") == [
            f"{tmp_path / 'farm.yaml'}:5: workers.box.memory: must be at least 6m (Docker's "
            f"smallest memory limit), not '{memory}'"]
    for memory in ("6m", "6144k", "4g", "0.5g"):
        loads(BASE.replace("count: 1}", f"count: 1}}\n  box: {{kind: docker, memory: {memory}}}"),
              tmp_path / "farm.yaml")


def test_docker_compile_cache_is_a_size_or_false(tmp_path):
    for value in ("'lots'", "true", "'512k'", "[1]"):
        [problem] = pool_problems(tmp_path, f"{{kind: docker, compile_cache: {value}}}")
        assert problem.startswith(f"{tmp_path / 'farm.yaml'}:5: workers.box.compile_cache: "
                                  "must be a size of at least 1m such as 10g, or false, not ")
    for value, expected in (("20g", "20g"), ("false", None), ("'1m'", "1m")):
        farm = loads(BASE.replace("count: 1}", "count: 1}\n  box: {kind: docker, "
                                  f"compile_cache: {value}}}"), tmp_path / "farm.yaml")
        assert farm.pools["box"].compile_cache == expected
    farm = loads(BASE.replace("count: 1}", "count: 1}\n  box: {kind: docker}"),
                 tmp_path / "farm.yaml")
    assert farm.pools["box"].compile_cache == "10g"


@pytest.mark.parametrize("kind", ["local", "docker"])
def test_too_many_workers_in_a_pool(tmp_path, kind):
    assert pool_problems(tmp_path, f"{{kind: {kind}, count: 65}}") == [
        f"{tmp_path / 'farm.yaml'}:5: workers.box.count: must be at most 64, not 65 "
        "(more workers than one machine can start)"]


# -- ports -----------------------------------------------------------------

@pytest.mark.parametrize("port, message", [
    (0, "must be at least 1, not 0"), (65536, "must be at most 65535, not 65536")])
def test_ports_are_tcp_ports(tmp_path, port, message):
    config = tmp_path / "farm.yaml"
    assert problems(config, with_lines(farm=f"  worker_port: {port}\n")) == [
        f"{config}:3: farm.worker_port: {message}"]
    assert problems(config, with_lines(f"www: {{port: {port}}}")) == [
        f"{config}:9: www.port: {message}"]


def test_the_ui_and_the_workers_need_a_port_each(tmp_path):
    config = tmp_path / "farm.yaml"
    assert problems(config, with_lines("www: {port: 9000}", farm="  worker_port: 9000\n")) == [
        f"{config}:10: www.port: www.port and farm.worker_port are both 9000: the web UI and "
        "the workers need a port each"]
    assert problems(config, with_lines(farm="  worker_port: 8010\n")) == [
        f"{config}:3: farm.worker_port: www.port and farm.worker_port are both 8010: the web UI "
        "and the workers need a port each"]


# -- the state directory -----------------------------------------------------

@pytest.mark.parametrize("state_dir, message", [
    ("/proc/rustfarm", "/proc/rustfarm is under /proc, which cannot hold the farm's state"),
    ("/sys/rustfarm", "/sys/rustfarm is under /sys, which cannot hold the farm's state"),
    ("/dev/shm/farm", "/dev/shm/farm is under /dev, which cannot hold the farm's state"),
])
def test_state_dir_under_kernel_trees(tmp_path, state_dir, message):
    config = tmp_path / "farm.yaml"
    assert problems(config, with_lines(farm=f"  state_dir: {state_dir}\n")) == [
        f"{config}:3: farm.state_dir: {message}"]


def test_state_dir_that_is_a_file_or_under_one(tmp_path):
    config = tmp_path / "farm.yaml"
    (tmp_path / "a-file").write_text("")
    assert problems(config, with_lines(farm="  state_dir: a-file\n")) == [
        f"{config}:3: farm.state_dir: {tmp_path / 'a-file'} is not a directory"]
    assert problems(config, with_lines(farm="  state_dir: a-file/state\n")) == [
        f"{config}:3: farm.state_dir: {tmp_path / 'a-file' / 'state'} cannot be made: "
        f"{tmp_path / 'a-file'} is not a directory"]


def test_state_dir_that_cannot_be_written():
    """Run as an unprivileged user: root may write anywhere."""
    text = with_lines(farm="  state_dir: /rustfarm-test-not-here/state\n")
    script = ("import sys; from pathlib import Path; from rustfarm.farmfile import loads, "
              "FarmFileError\ntry:\n    loads(sys.stdin.read(), Path('/x/farm.yaml'))\n"
              "except FarmFileError as err:\n    print(err)\n")
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to drop root")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(command, input=text, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.stdout == ("/x/farm.yaml:3: farm.state_dir: / is not writable: the farm keeps "
                           "its database, logs and secrets there\n"), done.stderr


# -- names that make Docker names ------------------------------------------

def test_farm_and_project_names_fit_docker_names(tmp_path):
    config = tmp_path / "farm.yaml"
    long = "f" * 41
    text = BASE.replace("name: demo", f"name: {long}").replace("  hello:", f"  {'p' * 41}:")
    assert problems(config, text) == [
        f"{config}:2: farm.name: at most 40 characters (Docker volume names are made from it), "
        "not 41",
        f"{config}:8: projects.{'p' * 41}: names are at most 40 characters (Docker volume names "
        "are made from them), not 41",
    ]
    loads(BASE.replace("name: demo", f"name: {'f' * 40}").replace("  hello:", f"  {'p' * 40}:"),
          config)


# -- files that are not farm files -------------------------------------------

def load_problems(path: Path) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        load(path)
    return [str(p) for p in caught.value.problems]


def test_binary_garbage_is_not_a_text_file(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_bytes(bytes(range(256)) * 4)
    assert load_problems(config) == [
        f"{config}: not a text file (it holds NUL bytes): farm.yaml is YAML text"]


def test_latin1_text_is_not_utf8(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_bytes(with_lines(farm="  title: Caf\xe9 farm\n").encode("latin-1"))
    assert load_problems(config) == [
        f"{config}:3: not UTF-8 text (byte 0xe9): save farm.yaml as UTF-8"]


def test_a_file_over_a_megabyte_is_refused(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_text(BASE + "#" * (2**20) + "\n")
    assert load_problems(config) == [f"{config}: larger than 1 MB: not a farm file"]
    with pytest.raises(FarmFileError, match="larger than 1 MB"):
        loads(BASE + "#" * (2**20), config)


def test_a_device_is_read_no_further_than_the_limit(tmp_path):
    config = tmp_path / "farm.yaml"
    config.symlink_to("/dev/zero")
    assert load_problems(config)[0].endswith("larger than 1 MB: not a farm file")


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    config = tmp_path / "farm.yaml"
    found = problems(config, BASE + billion_laughs())
    assert len(found) == 1
    assert found[0].startswith(f"{config}:")
    assert found[0].endswith(": more than 100,000 values once its aliases are expanded "
                             "(nested anchors and aliases: a YAML alias bomb?)")
    # Aliases of small things are still welcome.
    farm = loads(BASE.replace("  local: {kind: local, count: 1}",
                              "  local: &pool {kind: local, count: 2}\n  other: *pool"), config)
    assert farm.pools["other"].count == 2


def test_a_merge_key_bomb_is_refused_quickly(tmp_path):
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}" for i in range(1, 10)]
    found = problems(tmp_path / "farm.yaml", BASE + "\n".join(lines) + "\n")
    assert len(found) == 1 and "a YAML alias bomb?" in found[0]


def test_a_collection_as_a_key_is_never_built(tmp_path):
    # The bomb's anchors are all inside the key: only building the key expands it.
    levels = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    text = f"? [{', '.join(levels)}]\n: x\n"
    found = problems(tmp_path / "farm.yaml", BASE.replace("projects:", text + "projects:"))
    assert [p for p in found if p.endswith(": keys must be text, not a sequence")]


def test_merged_keys_may_be_given_again(tmp_path):
    farm = loads(BASE.replace("  local: {kind: local, count: 1}",
                              "  local: &pool {kind: local, count: 2}\n"
                              "  other: {<<: *pool, count: 3}"), tmp_path / "farm.yaml")
    assert (farm.pools["local"].count, farm.pools["other"].count) == (2, 3)


def test_a_merge_of_something_else_is_one_line(tmp_path):
    config = tmp_path / "farm.yaml"
    found = problems(config, BASE.replace("kind: local, count: 1", "<<: 5"))
    assert found == [f"{config}:4: YAML error: expected a mapping or list of mappings for "
                     "merging, but found scalar"]


def test_deep_nesting_is_one_line(tmp_path):
    found = problems(tmp_path / "farm.yaml", "farm: " + "[" * 5000 + "]" * 5000 + "\n")
    assert found == [f"{tmp_path / 'farm.yaml'}: YAML nested too deeply"]


COMPILE_BASE = f"""\
farm:
  name: demo
workers:
  local: {{kind: local, count: 1}}
  dk: {{kind: docker, count: 1}}
targets:
  x86_64-unknown-linux-gnu: {{pool: local}}
  mipsel-unknown-linux-musl: {{pool: dk, image: rustfarm/mipsel-unknown-linux-musl:1.96-x}}
projects:
  hello: {{source: {EXAMPLE}}}
"""


def test_uploads_build_only_in_containers_by_default(tmp_path):
    farm = loads(COMPILE_BASE, tmp_path / "farm.yaml")
    assert farm.compile.targets == ("mipsel-unknown-linux-musl",)
    assert farm.compile.tessel_port == 0 and not farm.compile.tessel_anonymous


def test_compile_settings_that_would_break_or_expose_the_farm_are_refused(tmp_path):
    path = tmp_path / "farm.yaml"
    found = problems(path, COMPILE_BASE + """\
compile:
  targets: [x86_64-unknown-linux-gnu, mips-unknown-linux-musl]
  max_upload: huge
  queue: 0
  tessel_port: 8010
  tessel_target: aarch64-unknown-linux-musl
""")
    assert found == [
        f"{path}:12: compile.targets[0]: 'x86_64-unknown-linux-gnu' builds on pool 'local', "
        "which runs builds on this machine; uploads build only in containers (docker or ec2 "
        "pools)",
        f"{path}:12: compile.targets[1]: 'mips-unknown-linux-musl' is not a target of this "
        "farm (did you mean 'mipsel-unknown-linux-musl'?)",
        f"{path}:13: compile.max_upload: must be a size of at least 1k such as 50m, not 'huge'",
        f"{path}:14: compile.queue: must be at least 1, not 0",
        f"{path}:15: compile.tessel_port: port 8010 is already the web UI's port",
        f"{path}:16: compile.tessel_target: 'aarch64-unknown-linux-musl' is not one of "
        "compile.targets (x86_64-unknown-linux-gnu, mips-unknown-linux-musl)",
    ]


def test_a_project_named_compile_is_refused_while_uploads_build(tmp_path):
    found = problems(tmp_path / "farm.yaml", COMPILE_BASE.replace("  hello:", "  compile:"))
    assert found == [f"{tmp_path / 'farm.yaml'}:10: projects.compile: the name 'compile' is "
                     "the compile endpoint's (its builders are compile:<target>); choose "
                     "another"]


# -- other registries ------------------------------------------------------

def test_a_registry_needs_an_index_cargo_reads(tmp_path):
    config = tmp_path / "farm.yaml"
    found = problems(config, with_lines(
        "crates:", "  registries:",
        "    company: {index: crates.example.com, tokn: true}",
        "    crates-io: {index: 'sparse+https://index.crates.io/'}",
        "    other: {token: true}"))
    assert any(p.startswith(f"{config}:11: crates.registries.company.index: 'crates.example.com'"
                            " is not a registry index: sparse+https://") for p in found), found
    assert any(p.startswith(f"{config}:11: crates.registries.company.tokn: unknown key "
                            "(did you mean 'token'?)") for p in found), found
    assert any("crates.registries.crates-io: crates-io is crates.io itself" in p
               for p in found), found
    assert any("crates.registries.other.index: missing required key" in p for p in found), found


def test_the_crate_store_keeps_unused_crates_a_whole_number_of_days(tmp_path):
    config = tmp_path / "farm.yaml"
    found = problems(config, with_lines("crates:", "  keep_days: -1"))
    assert f"{config}:10: crates.keep_days: must be at least 0, not -1" in found, found
    found = problems(config, with_lines("crates:", "  keep_days: 1.5"))
    assert any(p.startswith(f"{config}:10: crates.keep_days: ") and "whole number" in p
               for p in found), found


def test_a_registry_that_needs_a_token_without_one_is_refused_by_farm_check(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_text(with_lines(
        "crates:", "  registries:",
        "    company: {index: 'sparse+https://crates.example.com/index/', token: true}"))
    farm = [str(Path(sys.executable).parent / "farm"), "--config", str(config)]
    refused = subprocess.run([*farm, "check"], capture_output=True, text=True)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "crates.registries.company.token: the farm has no token for registry 'company'" \
        in refused.stderr
    stored = subprocess.run([*farm, "registry-token", "company"], input="t0ken\n",
                            capture_output=True, text=True)
    assert stored.returncode == 0, stored.stderr
    assert (tmp_path / ".farm" / "secrets" / "registry-company").read_text().strip() == "t0ken"
    assert oct((tmp_path / ".farm" / "secrets" / "registry-company").stat().st_mode & 0o777) \
        == "0o600"
    assert subprocess.run([*farm, "check"], capture_output=True).returncode == 0
    unknown = subprocess.run([*farm, "registry-token", "nope"], input="x\n",
                             capture_output=True, text=True)
    assert unknown.returncode != 0 and "no registry 'nope'" in unknown.stderr


def test_a_release_s_packages_and_service_are_checked(tmp_path):
    config = tmp_path / "farm.yaml"
    text = BASE.replace(f"  hello: {{source: {EXAMPLE}}}\n",
                        f"  hello:\n    source: {EXAMPLE}\n    packages: [deb, rpm]\n"
                        "    service: \"; rm -rf /\"\n")
    assert problems(config, text) == [
        f"{config}:10: projects.hello.packages[1]: 'rpm' is not a package kind: deb, ipk",
        f"{config}:11: projects.hello.service: one command line, starting with a binary the "
        "project ships (run from /usr/bin) or an absolute path"]
    farm = loads(text.replace("deb, rpm", "ipk").replace('"; rm -rf /"', "hello --serve"),
                 config)
    assert (farm.projects["hello"].packages, farm.projects["hello"].service) == (
        ("ipk",), "hello --serve")
    assert loads(BASE, config).projects["hello"].packages == ("deb", "ipk")


def test_an_s3_artifact_store_is_checked(tmp_path):
    config = tmp_path / "farm.yaml"
    text = with_lines("artifacts:", "  directory: releases",
                      "  s3: {bucket: My_Bucket, prefix: /abs, endpoint_url: 'ftp://x'}")
    assert problems(config, text) == [
        f"{config}:11: artifacts.s3: the store is a directory or an S3 bucket: give directory "
        "or s3, not both",
        f"{config}:11: artifacts.s3.bucket: 'My_Bucket' is not an S3 bucket name: 3 to 63 "
        "lower-case letters, digits, '.' and '-'",
        f"{config}:11: artifacts.s3.endpoint_url: must be an http:// or https:// URL",
        f"{config}:11: artifacts.s3.prefix: '/abs' is not a key prefix: no leading '/', no "
        "'..', no empty parts"]
    farm = loads(with_lines("artifacts:", "  s3: {bucket: team-releases, prefix: fw/mips}"),
                 config)
    assert (farm.artifacts.s3.bucket, farm.artifacts.s3.prefix) == ("team-releases", "fw/mips/")


def test_min_size_is_taken_on_every_target(tmp_path):
    # Every image's std keeps its LLVM bitcode, which min-size's fat LTO links against.
    config = tmp_path / "farm.yaml"
    text = BASE.replace("targets:\n  x86_64-unknown-linux-gnu: {pool: local}\n",
                        "targets:\n  x86_64-unknown-linux-gnu: {pool: local}\n"
                        "  mipsel-unknown-linux-musl: {pool: local}\n").replace(
        f"  hello: {{source: {EXAMPLE}}}\n",
        f"  hello: {{source: {EXAMPLE}, profile: min-size}}\n")
    assert loads(text, config).projects["hello"].profile == "min-size"


def test_auditable_builds_are_refused_on_a_pool_without_the_images(tmp_path):
    # cargo-auditable comes with the farm's images; a local pool builds on the machine.
    config = tmp_path / "farm.yaml"
    text = BASE.replace(f"  hello: {{source: {EXAMPLE}}}\n",
                        f"  hello:\n    source: {EXAMPLE}\n    auditable: true\n")
    assert problems(config, text) == [
        f"{config}:10: projects.hello.auditable: cargo-auditable comes with the farm's "
        "images, and pool 'local' builds on the machine itself, without one: build this "
        "project's targets on docker or ec2 pools"]
    assert loads(BASE, config).projects["hello"].auditable is False
