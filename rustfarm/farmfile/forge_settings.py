"""farm.yaml's forge and notification settings: where a project's code lives (its
webhooks, commit statuses and check runs), who hears of its builds, and the secrets'
names."""

from __future__ import annotations

from dataclasses import dataclass

FORGE_KINDS = ("github", "gitlab", "gitea")
# Where each forge's API is unless farm.yaml says (Gitea has none: it is self-hosted).
FORGE_API_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com"}


# The label a maintainer adds to a pull request from a fork to have it built.
DEFAULT_PR_LABEL = "rustfarm: build"


@dataclass(frozen=True)
class PullRequests:
    """Which pull (merge) requests are built: every one from the repository itself; one
    from a fork once it has ``label`` or when its author is one of ``authors``."""

    label: str = DEFAULT_PR_LABEL
    authors: tuple[str, ...] = ()
    comment: bool = True      # one summary comment per push, once its builds end

    def allows(self, from_fork: bool, author: str, labels: tuple[str, ...]) -> bool:
        return not from_fork or self.label in labels or author in self.authors


@dataclass(frozen=True)
class CheckRuns:
    """The GitHub App a project's check runs are made as: its id, and the installation
    on the repository (0: asked of GitHub). Its private key is in the secret store."""

    app_id: int
    installation_id: int = 0


@dataclass(frozen=True)
class Forge:
    """Where a project's code lives: pushes arrive from there as webhooks
    (/change_hook/<kind>), and its commits get a status per target."""

    kind: str                 # github | gitlab | gitea
    repository: str           # owner/name (GitLab: group/subgroup/name)
    api_url: str              # the forge's API (statuses go there)
    statuses: bool = True     # post commit statuses (needs `farm forge-token PROJECT`)
    pull_requests: PullRequests | None = PullRequests()    # None: none is built
    checks: CheckRuns | None = None     # GitHub check runs (needs `farm github-app-key`)

    @property
    def needs_token(self) -> bool:
        """Whether the farm posts to the forge's API: statuses, or requests' comments."""
        return self.statuses or bool(self.pull_requests and self.pull_requests.comment)


@dataclass(frozen=True)
class ProjectNotify:
    """Who hears of a project's builds: mail on a change from pass to fail and back,
    and a JSON webhook for every build's end."""

    email: tuple[str, ...] = ()
    webhook: str = ""


@dataclass(frozen=True)
class NotifySettings:
    """The SMTP relay notification mail goes through."""

    smtp_host: str = "localhost"
    smtp_port: int = 25
    sender: str = ""          # the From address ("" = rustfarm@<farm name>)


def webhook_secret_name(project: str) -> str:
    """The secret a project's forge signs its webhooks with (`farm webhook-secret`)."""
    return f"webhook-{project}"


def forge_token_name(project: str) -> str:
    """The token statuses are posted to a project's forge with (`farm forge-token`)."""
    return f"forge-token-{project}"


def github_app_key_name(project: str) -> str:
    """The private key of the GitHub App a project's check runs are made as
    (`farm github-app-key`)."""
    return f"github-app-key-{project}"
