"""farm.yaml's forge and notify keys: what they mean, what `farm check` refuses (with
file, line and key), and the commands that keep their secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustfarm.cli.main import main
from rustfarm.farmfile import FarmFileError, loads
from rustfarm.farmfile.forge_settings import Forge, NotifySettings, ProjectNotify, PullRequests

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


def farm_text(project_lines: str, top: str = "") -> str:
    return (f"farm: {{name: demo, worker_port: 9000}}\nwww: {{port: 8000}}\n"
            f"workers:\n  local: {{kind: local, count: 1}}\n"
            f"targets:\n  x86_64-unknown-linux-gnu: {{pool: local}}\n{top}"
            f"projects:\n  hello:\n    source: {EXAMPLE}\n{project_lines}")


def problems(tmp_path: Path, project_lines: str, top: str = "") -> list[str]:
    """The problems `farm check` reports, as it names them from farm.yaml's directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        return _problems(tmp_path, project_lines, top)


def _problems(tmp_path: Path, project_lines: str, top: str) -> list[str]:
    with pytest.raises(FarmFileError) as caught:
        loads(farm_text(project_lines, top), tmp_path / "farm.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_forge_and_notifications_as_written(tmp_path):
    farm = loads(farm_text(
        "    forge: {kind: gitlab, repository: group/sub/hello, api_url: 'https://git.example.com/'}\n"
        "    notify: {email: [owner@example.com], webhook: 'https://chat.example.com/x'}\n",
        top="notify: {smtp: 'mail.example.com:587', from: farm@example.com}\n"),
        tmp_path / "farm.yaml")
    hello = farm.projects["hello"]
    assert hello.forge == Forge("gitlab", "group/sub/hello", "https://git.example.com", True)
    assert hello.notify == ProjectNotify(("owner@example.com",), "https://chat.example.com/x")
    assert farm.notify == NotifySettings("mail.example.com", 587, "farm@example.com")
    assert hello.watched and not hello.polls


def test_defaults(tmp_path):
    farm = loads(farm_text("    forge: {kind: github, repository: acme/hello}\n"),
                 tmp_path / "farm.yaml")
    assert farm.projects["hello"].forge.api_url == "https://api.github.com"
    assert farm.notify == NotifySettings("localhost", 25, "")


def test_which_pull_requests_are_built(tmp_path):
    def pulls(lines: str):
        farm = loads(farm_text("    forge:\n      kind: github\n      repository: acme/hello\n"
                               + lines), tmp_path / "farm.yaml")
        return farm.projects["hello"].forge.pull_requests
    assert pulls("") == PullRequests("rustfarm: build", ())
    assert pulls("      pull_requests: false\n") is None
    assert pulls("      pull_requests: {label: ci-ok, authors: [alice]}\n") == \
        PullRequests("ci-ok", ("alice",))
    found = problems(tmp_path, "    forge:\n      kind: github\n      repository: acme/hello\n"
                               "      pull_requests: {label: '', author: [alice]}\n")
    assert "farm.yaml:13: projects.hello.forge.pull_requests.author: unknown key (did you " \
           "mean 'authors'?)" in found
    assert "farm.yaml:13: projects.hello.forge.pull_requests.label: a label's name, which a " \
           "maintainer adds to a fork's request to build it" in found


def test_mistakes_are_named_with_line_and_key(tmp_path):
    found = problems(tmp_path, (
        "    forge:\n"
        "      kind: gitee\n"
        "      repository: acme/hello.git\n"
        "      statuss: false\n"
        "    notify:\n"
        "      email: [owner]\n"
        "      webhook: chat.example.com\n"),
        top="notify: {smtp: 'mail:99999'}\n")
    assert "farm.yaml:7: notify.smtp: 'mail:99999' is not HOST or HOST:PORT " \
           "(e.g. smtp.example.com:587)" in found
    assert "farm.yaml:12: projects.hello.forge.kind: unknown forge 'gitee' (did you mean " \
           "'gitea'?) (forges: github, gitlab, gitea)" in found
    assert "farm.yaml:13: projects.hello.forge.repository: 'acme/hello.git' is not a " \
           "repository: owner/name, as in the forge's URLs (no .git)" in found
    assert "farm.yaml:14: projects.hello.forge.statuss: unknown key (did you mean " \
           "'statuses'?)" in found
    assert "farm.yaml:16: projects.hello.notify.email[0]: 'owner' is not a mail address " \
           "(name@example.com)" in found
    assert "farm.yaml:17: projects.hello.notify.webhook: must be an http:// or https:// URL" \
        in found


def test_gitea_needs_its_address(tmp_path):
    assert problems(tmp_path, "    forge:\n      kind: gitea\n      repository: acme/hello\n") \
        == ["farm.yaml:11: projects.hello.forge.api_url: missing required key: Gitea is "
            "self-hosted, give its address (e.g. https://gitea.example.com)"]


def test_secrets_of_a_forge_project(tmp_path, capsys):
    config = tmp_path / "farm.yaml"
    config.write_text(farm_text("    forge: {kind: github, repository: acme/hello}\n"))
    assert main(["--config", str(config), "check"]) == 1
    assert "projects.hello.forge: the farm has no token for github to post commit statuses " \
           "and pull requests' comments with; store it with `farm forge-token hello`" in \
        capsys.readouterr().err

    assert main(["--config", str(config), "webhook-secret", "hello"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["--config", str(config), "webhook-secret", "hello"]) == 0
    assert capsys.readouterr().out.strip() == first and len(first) == 64
    assert (tmp_path / ".farm" / "secrets" / "webhook-hello").stat().st_mode & 0o077 == 0

    assert main(["--config", str(config), "webhook-secret", "nobody"]) == 1
    assert "no project 'nobody'" in capsys.readouterr().err


def test_forge_token_from_stdin(tmp_path, capsys, monkeypatch):
    import io
    config = tmp_path / "farm.yaml"
    config.write_text(farm_text("    forge: {kind: github, repository: acme/hello}\n"))
    monkeypatch.setattr("sys.stdin", io.StringIO("ghp_secret-token\n"))
    assert main(["--config", str(config), "forge-token", "hello"]) == 0
    assert "ghp_secret-token" not in capsys.readouterr().out
    assert (tmp_path / ".farm" / "secrets" / "forge-token-hello").read_text() == "ghp_secret-token"
    assert main(["--config", str(config), "check"]) == 0


def test_a_project_without_forge_has_no_webhook_secret(tmp_path, capsys):
    config = tmp_path / "farm.yaml"
    config.write_text(farm_text(""))
    assert main(["--config", str(config), "webhook-secret", "hello"]) == 1
    assert "project 'hello' has no forge" in capsys.readouterr().err
