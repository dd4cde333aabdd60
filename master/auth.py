"""Web UI login: users named in farm.yaml, passwords from the master's secrets provider."""

from __future__ import annotations

import hmac

from buildbot.www.auth import TwistedICredAuthBase
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.web.guard import BasicCredentialFactory
from zope.interface import implementer

from rustfarm.state import ui_secret_name


@implementer(ICredentialsChecker)
class _SecretPasswordChecker:
    credentialInterfaces = [IUsernamePassword]

    def __init__(self, auth: "SecretPasswordAuth"):
        self.auth = auth

    @defer.inlineCallbacks
    def requestAvatarId(self, credentials):
        user = credentials.username.decode("utf-8", "replace")
        if user in self.auth.users:
            secret = yield self.auth.master.secrets_manager.get(ui_secret_name(user))
            given = credentials.password
            if secret is not None and secret.value and hmac.compare_digest(
                    secret.value.encode(), given if isinstance(given, bytes) else given.encode()):
                return credentials.username
        raise UnauthorizedLogin()


class SecretPasswordAuth(TwistedICredAuthBase):
    """HTTP basic login checked against the secret ``ui-<user>``; nothing is kept in config."""

    def __init__(self, users: tuple[str, ...], **kwargs):
        self.users = frozenset(users)
        super().__init__([BasicCredentialFactory(b"rustfarm")], [_SecretPasswordChecker(self)],
                         **kwargs)
