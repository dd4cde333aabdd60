"""What a real master's web server refuses: files outside the artifact store,
repeated wrong passwords, and force requests the form does not offer."""

from __future__ import annotations

import http.client
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.support.farm import EXAMPLE, RunningFarm, local_farm_yaml

from .conftest import HOST_TARGET

USERS = ("admin", "ops", "dev1", "dev2", "dev3")


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A farm (no builds needed) whose store holds links pointing in and out of it."""
    farm = RunningFarm(tmp_path_factory.mktemp("farm"), local_farm_yaml(
        f"  hello: {{source: {EXAMPLE}}}\n", workers=1), users=f"[{', '.join(USERS)}]")
    store = farm.state / "artifacts"
    (store / "hello" / "abc" / "x86").mkdir(parents=True)
    (store / "hello" / "abc" / "x86" / "SHA256SUMS").write_text("sums\n")
    (store / "newest").symlink_to("hello/abc/x86")
    (store / "etc").symlink_to("/etc")
    (store / "passwd").symlink_to("/etc/passwd")
    (store / "state-secrets").symlink_to("../secrets")
    try:
        yield farm.up()
    finally:
        farm.down()


# -- the artifact store ----------------------------------------------------

def get(farm: RunningFarm, path: str) -> requests.Response:
    return requests.get(f"{farm.url}plugins/artifacts/{path}", timeout=30)


def test_links_out_of_the_store_are_not_found(farm):
    for path in ("etc/passwd", "etc/", "etc", "passwd", "state-secrets/ui-admin",
                 "state-secrets/"):
        reply = get(farm, path)
        assert reply.status_code == 404, path
        assert "root:" not in reply.text and farm.password() not in reply.text
    # Files, and links that stay inside the store, are served.
    assert get(farm, "hello/abc/x86/SHA256SUMS").text == "sums\n"
    assert get(farm, "newest/SHA256SUMS").text == "sums\n"


@pytest.mark.parametrize("path", [
    "/plugins/artifacts/../secrets/ui-admin",
    "/plugins/artifacts/hello/../../secrets/ui-admin",
    "/plugins/artifacts/%2e%2e/secrets/ui-admin",
    "/plugins/artifacts/..%2fsecrets%2fui-admin",
    "/plugins/artifacts/%2fetc%2fpasswd",
])
def test_dot_dot_does_not_leave_the_store(farm, path):
    # Sent as written: HTTP clients would normalise the dots away.
    connection = http.client.HTTPConnection("127.0.0.1", farm.www_port, timeout=30)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        body = reply.read().decode(errors="replace")
    finally:
        connection.close()
    assert reply.status not in (200, 301, 302)
    assert farm.password() not in body and "root:" not in body


# -- login throttling ------------------------------------------------------

class _FromAddress(HTTPAdapter):
    """Connects from another loopback address: the master sees another client."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def login(farm: RunningFarm, user: str, password: str, address: str) -> requests.Response:
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session.get(f"{farm.url}auth/login", auth=(user, password), timeout=30,
                       allow_redirects=False)


def logged_in(reply: requests.Response) -> bool:
    return reply.status_code in (200, 302)


def test_repeated_failures_lock_out_that_user_from_that_address(farm):
    for attempt in range(5):
        assert login(farm, "admin", f"wrong-{attempt}", "127.0.0.2").status_code == 401
    # Right after the fifth failure even the right password is refused, unchecked.
    refused = login(farm, "admin", farm.password("admin"), "127.0.0.2")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.text == "too many failed logins: try again in 1 s\n"
    # Another user from that address, and that user from another address, are not affected.
    assert logged_in(login(farm, "ops", farm.password("ops"), "127.0.0.2"))
    assert logged_in(login(farm, "admin", farm.password("admin"), "127.0.0.1"))
    time.sleep(1.2)
    assert logged_in(login(farm, "admin", farm.password("admin"), "127.0.0.2"))

    log = (farm.state / "master" / "twistd.log").read_text()
    assert "5 failed logins for user 'admin' from 127.0.0.2; refusing it for 1 s" in log
    assert "wrong-" not in log


def test_each_further_failure_doubles_the_lockout(farm):
    for attempt in range(5):
        assert login(farm, "ops", "wrong", "127.0.0.4").status_code == 401
    assert login(farm, "ops", farm.password("ops"), "127.0.0.4").status_code == 429
    time.sleep(1.2)
    assert login(farm, "ops", "wrong", "127.0.0.4").status_code == 401
    refused = login(farm, "ops", farm.password("ops"), "127.0.0.4")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    time.sleep(2.2)
    assert logged_in(login(farm, "ops", farm.password("ops"), "127.0.0.4"))


def test_many_failures_from_one_address_lock_out_the_address(farm):
    for user in ("dev1", "dev2", "dev3", "nobody"):
        for attempt in range(5):
            assert login(farm, user, "wrong", "127.0.0.3").status_code == 401
    # admin never failed, but that address did, 20 times.
    assert login(farm, "admin", farm.password("admin"), "127.0.0.3").status_code == 429
    assert logged_in(login(farm, "admin", farm.password("admin"), "127.0.0.5"))
    log = (farm.state / "master" / "twistd.log").read_text()
    assert "20 failed logins for address 127.0.0.3" in log


# -- the force API ---------------------------------------------------------

def force(farm: RunningFarm, scheduler: str, **params) -> requests.Response:
    farm.login()
    body = {"jsonrpc": "2.0", "id": 1, "method": "force", "params": params}
    return farm.session.post(f"{farm.url}api/v2/forceschedulers/{scheduler}", json=body,
                             timeout=30, headers={"Accept": "application/json"})


def error_of(reply: requests.Response) -> str:
    assert reply.status_code == 400, reply.text
    return str(reply.json()["error"]["message"])


def test_forcing_an_unknown_target_is_a_clear_400(farm):
    message = error_of(force(farm, "force-hello", targets=["mipsel-unknown-linux-gnu"]))
    assert message == ("{'targets': 'unknown targets for this project: mipsel-unknown-linux-gnu "
                       f"(targets: {HOST_TARGET})'}}")
    assert "must be a list of target triples" in error_of(force(farm, "force-hello", targets=5))
    assert farm.api("buildrequests")["buildrequests"] == []
    assert "Traceback" not in (farm.state / "master" / "twistd.log").read_text()


@pytest.mark.parametrize("scheduler", ["force-hello", "force-hello-builder"])
def test_forcing_a_profile_the_form_does_not_offer_is_a_clear_400(farm, scheduler):
    message = error_of(force(farm, scheduler, targets=[HOST_TARGET], profile="release; id"))
    assert message == ("{'profile': \"cargo profile 'release; id' is not offered for this "
                       "project (profiles: dev, release)\"}")
    assert farm.api("buildrequests")["buildrequests"] == []
    assert "Traceback" not in (farm.state / "master" / "twistd.log").read_text()
