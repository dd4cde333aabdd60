"""The `farm` command's answers to bad input and to a farm that cannot start."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.farm import EXAMPLE, RunningFarm, farm_command

REPO = Path(__file__).resolve().parents[2]


def test_check_says_fine(tmp_path):
    done = farm_command(REPO / "farm.yaml", "check")
    assert done.stdout.startswith(f"{REPO / 'farm.yaml'}: fine: 1 project, 22 targets")


def test_check_lists_every_problem_without_a_traceback(tmp_path):
    config = tmp_path / "farm.yaml"
    config.write_text("farm: {name: x}\nworkers:\n  local: {kind: local, cuont: 2}\n"
                      "targets:\n  x86_64-unknown-linux-gnu: {pool: lcoal}\n"
                      "projects:\n  p: {source: nowhere}\n")
    done = farm_command(config, "check", check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "farm.yaml:3: workers.local.cuont: unknown key (did you mean 'count'?)",
        "farm.yaml:5: targets.x86_64-unknown-linux-gnu.pool: no worker pool 'lcoal' is defined "
        "under workers (did you mean 'local'?) (defined: local)",
        f"farm.yaml:7: projects.p.source: no such directory: {tmp_path / 'nowhere'} "
        "(give a git URL, a file:// URL or a local path)",
    ]


def test_config_may_follow_the_command_and_wins_there(tmp_path):
    import subprocess

    from tests.support.farm import FARM
    missing = tmp_path / "missing.yaml"
    after = subprocess.run([FARM, "check", "--config", str(REPO / "farm.yaml")],
                           capture_output=True, text=True, cwd=tmp_path)
    assert after.returncode == 0 and after.stdout.startswith(f"{REPO / 'farm.yaml'}: fine")
    both = subprocess.run([FARM, "--config", str(REPO / "farm.yaml"), "images", "list",
                           "--config", str(missing)], capture_output=True, text=True)
    assert both.returncode == 2 and f"{missing}: cannot read" in both.stderr
    for command in ("build", "logs", "reload", "images"):
        helped = subprocess.run([FARM, command, "--help"], capture_output=True, text=True)
        assert "--config" in helped.stdout, command
    assert "examples:" in subprocess.run([FARM, "--help"], capture_output=True,
                                         text=True).stdout


def test_check_on_a_missing_file(tmp_path):
    done = farm_command(tmp_path / "farm.yaml", "check", check=False)
    assert done.returncode == 2 and "cannot read" in done.stderr and "Traceback" not in done.stderr


def test_up_reports_a_port_in_use(tmp_path):
    farm = RunningFarm(tmp_path, f"""\
workers: {{local: {{kind: local, count: 1}}}}
targets: {{x86_64-unknown-linux-gnu: {{pool: local}}}}
projects: {{hello: {{source: {EXAMPLE}}}}}
""")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", farm.www_port))
        blocker.listen()
        done = farm.farm("up", check=False)
    assert done.returncode == 1
    assert done.stderr == (f"farm: cannot start the master: port {farm.www_port} on 127.0.0.1 "
                           "(www.port in farm.yaml) is already in use by another program\n")
    assert not (farm.state / "master" / "twistd.pid").exists()


def test_up_reports_why_the_master_failed(tmp_path):
    farm = RunningFarm(tmp_path, f"""\
db: {{url: "postgresql://nobody@127.0.0.1:1/none"}}
workers: {{local: {{kind: local, count: 1}}}}
targets: {{x86_64-unknown-linux-gnu: {{pool: local}}}}
projects: {{hello: {{source: {EXAMPLE}}}}}
""")
    done = farm.farm("up", check=False)
    try:
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("farm: ")
        assert "database" in done.stderr
    finally:
        farm.down()


def test_passwd_sets_a_ui_password(tmp_path):
    farm = RunningFarm(tmp_path, f"""\
workers: {{local: {{kind: local, count: 1}}}}
targets: {{x86_64-unknown-linux-gnu: {{pool: local}}}}
projects: {{hello: {{source: {EXAMPLE}}}}}
""")
    done = farm.farm("passwd", "admin", "--password-stdin", input="correct horse\n")
    assert "password for 'admin' stored" in done.stdout
    secret = farm.state / "secrets" / "ui-admin"
    assert secret.read_text() == "correct horse"
    assert secret.stat().st_mode & 0o077 == 0
    refused = farm.farm("passwd", "eve", "--password-stdin", input="whatever1\n", check=False)
    assert refused.returncode == 1 and "'eve' is not listed in www.users" in refused.stderr


def test_failures_are_summarized_without_tracebacks():
    from rustfarm.cli.master_log import summarize_failure
    assert summarize_failure("Errors loading configuration:\n  builder 'a': bad tag\n"
                             "  builder 'b': bad name\n") == \
        "configuration errors:\nbuilder 'a': bad tag\nbuilder 'b': bad name"
    # A master that refuses 2,222 builders says so in a screen, not in 358 KB.
    unknown = "".join(f"  Unknown builder 'p{i}:mips' in scheduler 'nightly'\n"
                      for i in range(2222))
    said = summarize_failure(f"Errors loading configuration:\n{unknown}").splitlines()
    assert said == ["configuration errors:",
                    "Unknown builder 'p0:mips' in scheduler 'nightly'",
                    "Unknown builder 'p1:mips' in scheduler 'nightly'",
                    "Unknown builder 'p2:mips' in scheduler 'nightly'",
                    "… and 2219 more problems like these"]
    trace = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "sqlalchemy.exc.OperationalError: connection refused\n")
    assert summarize_failure(trace) == "connection refused (OperationalError)"


def test_the_ec2_example_checks_offline_without_credentials(tmp_path):
    import os
    import subprocess

    from tests.support.farm import FARM
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    example = REPO / "examples" / "farm-ec2.yaml"
    done = subprocess.run([FARM, "check", "--config", str(example)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 builders, pools: local (local), cloud (ec2)" in done.stdout


def test_the_shell_completes_commands_and_options(tmp_path):
    import os
    import subprocess

    from tests.support.farm import FARM
    out = tmp_path / "completions"

    def complete(line: str) -> list[str]:
        env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
               "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n"}
        subprocess.run([FARM], env=env, capture_output=True, timeout=60)
        return sorted(out.read_text().split())

    assert complete("farm com") == ["compile"]
    assert "--target" in complete("farm compile --t")
    assert complete("farm images b") == ["build"]
