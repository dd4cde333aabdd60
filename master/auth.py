"""Web UI login: users named in farm.yaml, passwords from the master's secrets provider.

Repeated wrong passwords lock out: after :data:`FAILURES_BEFORE_LOCKOUT` failures
for one user from one client address (or :data:`ADDRESS_FAILURES_BEFORE_LOCKOUT`
from one address for any users), that user from that address (or that address)
is refused for a while without checking the password: 1 s, doubling with every
further failure up to 5 minutes. A correct password ends a user's lockout.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass

from buildbot.www.auth import TwistedICredAuthBase
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import LoginFailed, UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource
from twisted.web.guard import BasicCredentialFactory
from zope.interface import implementer

from rustfarm.state import ui_secret_name

FAILURES_BEFORE_LOCKOUT = 5
ADDRESS_FAILURES_BEFORE_LOCKOUT = 20
FIRST_LOCKOUT = 1.0            # seconds
LONGEST_LOCKOUT = 300.0
FORGET_AFTER = 3600.0          # failures this old no longer count
_MAX_RECORDS = 10_000          # beyond this, forgotten records are dropped

_log = Logger()


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed logins per (user, address) and per address, and the lockouts they earn."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.records: dict[tuple[str | None, str], _Failures] = {}

    def wait(self, user: str, address: str) -> float:
        """Seconds before ``user`` may try again from ``address`` (0: now)."""
        now = self.clock()
        records = (self.records.get((user, address)), self.records.get((None, address)))
        return max([0.0, *(record.locked_until - now for record in records if record)])

    def failed(self, user: str, address: str) -> None:
        who = f"user '{user}'" if user else "unknown users"
        self._count((user, address), FAILURES_BEFORE_LOCKOUT, f"{who} from {address}")
        self._count((None, address), ADDRESS_FAILURES_BEFORE_LOCKOUT, f"address {address}")

    def succeeded(self, user: str, address: str) -> None:
        self.records.pop((user, address), None)

    def _count(self, key: tuple[str | None, str], allowed: int, who: str) -> None:
        now = self.clock()
        record = self.records.get(key)
        if record is None or now - record.last > FORGET_AFTER:
            self._forget_old(now)
            record = self.records[key] = _Failures()
        record.count += 1
        record.last = now
        if record.count >= allowed:
            delay = min(FIRST_LOCKOUT * 2 ** (record.count - allowed), LONGEST_LOCKOUT)
            record.locked_until = now + delay
            _log.warn("web UI login: {count} failed logins for {who}; refusing it for {delay:g} s",
                      count=record.count, who=who, delay=delay)

    def _forget_old(self, now: float) -> None:
        if len(self.records) < _MAX_RECORDS:
            return
        recent = sorted(((key, record) for key, record in self.records.items()
                         if now - record.last <= FORGET_AFTER), key=lambda item: item[1].last)
        self.records = dict(recent[-_MAX_RECORDS // 2:])


class _AddressedCredentialFactory(BasicCredentialFactory):
    """Basic credentials that also carry the client's address, for the throttle."""

    def decode(self, response, request):
        credentials = super().decode(response, request)
        credentials.address = _client_address(request)
        return credentials


def _client_address(request) -> str:
    return getattr(request.getClientAddress(), "host", "") or "unknown"


@implementer(ICredentialsChecker)
class _SecretPasswordChecker:
    credentialInterfaces = [IUsernamePassword]

    def __init__(self, auth: "SecretPasswordAuth"):
        self.auth = auth

    @defer.inlineCallbacks
    def requestAvatarId(self, credentials):
        user = self.auth.known_user(credentials.username)
        address = getattr(credentials, "address", "unknown")
        throttle = self.auth.throttle
        if throttle.wait(user, address):
            raise UnauthorizedLogin()
        if user:
            secret = yield self.auth.master.secrets_manager.get(ui_secret_name(user))
            given = credentials.password
            if secret is not None and secret.value and hmac.compare_digest(
                    secret.value.encode(), given if isinstance(given, bytes) else given.encode()):
                throttle.succeeded(user, address)
                return credentials.username
        throttle.failed(user, address)
        raise UnauthorizedLogin()


class _ThrottledLogin(resource.Resource):
    """The login page: answers 429 while the user or address is locked out, before
    any password is looked at; otherwise the usual basic-auth login."""

    isLeaf = True

    def __init__(self, login: resource.Resource, auth: "SecretPasswordAuth"):
        super().__init__()
        self.login = login
        self.auth = auth

    def render(self, request):
        wait = self.auth.throttle.wait(self._user(request), _client_address(request))
        if not wait:
            return self.login.render(request)
        seconds = math.ceil(wait)
        request.setResponseCode(429)
        request.setHeader(b"retry-after", str(seconds).encode())
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return f"too many failed logins: try again in {seconds} s\n".encode()

    def _user(self, request) -> str:
        scheme, _, encoded = (request.getHeader(b"authorization") or b"").partition(b" ")
        if scheme.lower() != b"basic":
            return ""
        try:
            credentials = self.auth.credential_factory.decode(encoded, request)
        except LoginFailed:
            return ""
        return self.auth.known_user(credentials.username)


class SecretPasswordAuth(TwistedICredAuthBase):
    """HTTP basic login checked against the secret ``ui-<user>``; nothing is kept in config."""

    def __init__(self, users: tuple[str, ...], **kwargs):
        self.users = frozenset(users)
        self.throttle = LoginThrottle()
        self.credential_factory = _AddressedCredentialFactory(b"rustfarm")
        super().__init__([self.credential_factory], [_SecretPasswordChecker(self)], **kwargs)

    def known_user(self, name: bytes) -> str:
        """The user's name, or "" for every unknown name (they are throttled as one)."""
        user = name.decode("utf-8", "replace")
        return user if user in self.users else ""

    def getLoginResource(self):
        return _ThrottledLogin(super().getLoginResource(), self)
