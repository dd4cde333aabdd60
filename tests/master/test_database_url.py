"""The master's database URL: a PostgreSQL URL without a password gets the secret
store's when Buildbot renders it; a local server's role gets its password as a SCRAM
verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac

from buildbot.process.properties import Secret
from twisted.internet import defer

from rustfarm.cli.postgres import scram_sha_256
from rustfarm.farmfile.model import LOCAL_SERVER, DbSettings
from rustfarm.master.database import UrlWithSecretPassword, database_url, db_config


class SecretsOnly:
    """Properties that render the one secret the URL asks for."""

    def __init__(self, secrets: dict[str, str]):
        self.secrets = secrets
        self.asked: list[str] = []

    def render(self, value):
        assert isinstance(value, Secret)
        self.asked.append(value.secret_name)
        return defer.succeed(self.secrets[value.secret_name])


def rendered(url: UrlWithSecretPassword, password: str) -> str:
    props = SecretsOnly({"db-password": password})
    done = url.getRenderingFor(props)
    assert props.asked == ["db-password"]
    return done.result


def test_a_local_server_s_url_takes_the_stored_password(tmp_path):
    db = DbSettings("postgresql://rustfarm@127.0.0.1:5433/rustfarm", server=LOCAL_SERVER)
    url = database_url(db, tmp_path)
    assert url == UrlWithSecretPassword("postgresql://rustfarm@127.0.0.1:5433/rustfarm")
    assert rendered(url, "p@ss/w:rd%") == \
        "postgresql://rustfarm:p%40ss%2Fw%3Ard%25@127.0.0.1:5433/rustfarm"
    # Buildbot renders db_url itself (DBConfig), and compares two loads' settings.
    assert db_config(url) == {"db_url": url, "engine_kwargs": {"pool_pre_ping": True}} \
        == db_config(database_url(db, tmp_path))
    assert "p@ss" not in repr(url)


def test_an_external_server_s_url_takes_it_once_stored(tmp_path):
    db = DbSettings("postgresql://farm@10.0.0.2/farm")
    assert database_url(db, tmp_path) == "postgresql://farm@10.0.0.2/farm"
    (tmp_path / "db-password").write_text("stored")
    assert rendered(database_url(db, tmp_path), "stored") == \
        "postgresql://farm:stored@10.0.0.2/farm"


def test_a_url_with_a_password_or_sqlite_stays_as_written(tmp_path):
    (tmp_path / "db-password").write_text("stored")
    for url in ("postgresql://farm:written@10.0.0.2/farm", "sqlite:////var/farm/state.sqlite"):
        assert database_url(DbSettings(url), tmp_path) == url


def test_the_scram_verifier_is_postgresql_s():
    verifier = scram_sha_256("secret")
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = keys.split(":")
    assert method == "SCRAM-SHA-256" and iterations == "4096"
    salted = hashlib.pbkdf2_hmac("sha256", b"secret", base64.b64decode(salt), 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert base64.b64decode(stored_key) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_key) == hmac.new(salted, b"Server Key", "sha256").digest()
    assert "secret" not in verifier and scram_sha_256("secret") != verifier   # salted
