"""farm.yaml's forge.checks: the GitHub App check runs are made as, what `farm check`
refuses (with file, line and key), and `farm github-app-key`, which keeps the App's
private key."""

from __future__ import annotations

import io

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rustfarm.cli.main import main
from rustfarm.farmfile import loads
from rustfarm.farmfile.forge_settings import CheckRuns
from tests.support.forge_api import github_app_key

from .test_forge_yaml import farm_text, problems

GITHUB = "    forge:\n      kind: github\n      repository: acme/hello\n      statuses: false\n" \
         "      pull_requests: false\n"


def pem_of(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_checks_as_written(tmp_path):
    def checks(lines: str):
        return loads(farm_text(GITHUB + lines), tmp_path / "farm.yaml").projects["hello"] \
            .forge.checks
    assert checks("") is None
    assert checks("      checks: {app_id: 12345}\n") == CheckRuns(12345, 0)
    assert checks("      checks: {app_id: 12345, installation_id: 99}\n") == CheckRuns(12345, 99)


def test_mistakes_in_checks_are_named_with_line_and_key(tmp_path):
    assert problems(tmp_path, GITHUB + "      checks:\n        appid: 12345\n"
                                       "        installation_id: 0\n") == [
        "farm.yaml:16: projects.hello.forge.checks.app_id: missing required key",
        "farm.yaml:16: projects.hello.forge.checks.appid: unknown key (did you mean 'app_id'?)",
        "farm.yaml:17: projects.hello.forge.checks.installation_id: must be at least 1, not 0 "
        "(the number at the end of the installation's settings URL; leave it out to have it "
        "looked up)"]
    assert problems(tmp_path, GITHUB + "      checks: {app_id: twelve}\n") == [
        "farm.yaml:15: projects.hello.forge.checks.app_id: must be a whole number, not text"]
    assert problems(tmp_path, GITHUB + "      checks: true\n") == [
        "farm.yaml:15: projects.hello.forge.checks: the GitHub App check runs are made as: "
        "{app_id: N}, and optionally installation_id"]
    assert problems(tmp_path, "    forge: {kind: gitlab, repository: group/hello, "
                              "checks: {app_id: 1}}\n") == [
        "farm.yaml:10: projects.hello.forge.checks: check runs are GitHub's; gitlab has "
        "commit statuses only"]


def test_check_refuses_checks_without_the_app_s_key(tmp_path, capsys, monkeypatch):
    config = tmp_path / "farm.yaml"
    config.write_text(farm_text(GITHUB + "      checks: {app_id: 12345}\n"))
    assert main(["--config", str(config), "check"]) == 1
    assert "farm.yaml: projects.hello.forge.checks: the farm has no private key of GitHub " \
           "App 12345; store it with `farm github-app-key hello < app.pem`" in \
        capsys.readouterr().err
    pem, _ = github_app_key()
    monkeypatch.setattr("sys.stdin", io.StringIO(pem))
    assert main(["--config", str(config), "github-app-key", "hello"]) == 0
    said = capsys.readouterr()
    assert pem.splitlines()[1] not in said.out + said.err
    stored = tmp_path / ".farm" / "secrets" / "github-app-key-hello"
    assert stored.read_text() == pem.strip() + "\n"
    assert stored.stat().st_mode & 0o077 == 0
    assert main(["--config", str(config), "check"]) == 0


def test_a_key_that_is_not_an_app_s_is_refused(tmp_path, capsys, monkeypatch):
    config = tmp_path / "farm.yaml"
    config.write_text(farm_text(GITHUB + "      checks: {app_id: 12345}\n"))
    stored = tmp_path / ".farm" / "secrets" / "github-app-key-hello"
    for given, said in (("", "no key given"), ("ghp_a-token\n", "not a private key in PEM"),
                        (pem_of(ec.generate_private_key(ec.SECP256R1())), "not an RSA key")):
        monkeypatch.setattr("sys.stdin", io.StringIO(given))
        assert main(["--config", str(config), "github-app-key", "hello"]) == 1
        assert said in capsys.readouterr().err
        assert not stored.exists()


def test_a_project_without_checks_takes_no_app_key(tmp_path, capsys):
    config = tmp_path / "farm.yaml"
    config.write_text(farm_text(GITHUB))
    assert main(["--config", str(config), "github-app-key", "hello"]) == 1
    assert "project 'hello' has no forge.checks" in capsys.readouterr().err
