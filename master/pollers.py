"""Watching the projects' git repositories for new commits, cheaply enough for hundreds.

Every poll of Buildbot's GitPoller runs six git commands (``--version``, ``init``,
``ls-remote``, ``fetch``, ``rev-parse``, ``log``), each one a fork of the master's
process that holds its main thread (figures: docs/benchmarks.md). Here:

- one ``git ls-remote`` asks whether a watched branch moved, and Buildbot's full
  poll runs only when one did;
- each poller starts at a random point of its interval instead of at launch, so
  the projects' polls are spread evenly over the interval. A commit is still
  seen within one interval, including one pushed while the master was down;
- a project never polled before gets its starting point from that same
  ``ls-remote`` when the master starts (what its branches hold then is where its
  builds start from, as with Buildbot's first poll), and its first full poll,
  which fills the mirror, comes at its random point like the others', not during the
  master's start.
  (The one difference from Buildbot's first poll: should a branch be rewritten
  before that first full poll, the commits before the rewrite are not in the
  mirror to be told apart, and the rewritten branch's whole history counts as new.)
"""

from __future__ import annotations

import random

from buildbot.changes.gitpoller import GitPoller
from twisted.internet import defer
from twisted.python import log


class HeadsFirstGitPoller(GitPoller):
    """Buildbot's GitPoller, skipping the poll when no watched branch head moved."""

    _first_poll = None

    @defer.inlineCallbacks
    def activate(self):
        self.lastRev = yield self.getState("lastRev", {})
        if not self.lastRev:
            yield self.record_starting_point()
        # Never polled, and the remote did not say where its branches are: look in full
        # now. Else at a random point of the interval.
        phase = random.uniform(0, self.pollInterval) if self.lastRev else 0
        self._first_poll = self.master.reactor.callLater(phase, self._start_polling)

    @defer.inlineCallbacks
    def record_starting_point(self):
        """Where the watched branches are now, from ls-remote: builds start from there."""
        if not isinstance(self.branches, list):
            return
        heads = yield self.remote_heads()
        if heads:
            self.lastRev = heads
            yield self.setState("lastRev", heads)
            log.msg(f"gitpoller: {self.repourl} starts from "
                    + ", ".join(f"{branch} {commit[:12]}" for branch, commit in sorted(heads.items())))

    def _start_polling(self) -> None:
        self._first_poll = None
        self.doPoll.start(interval=self.pollInterval, now=True)

    def deactivate(self):
        if self._first_poll is not None and self._first_poll.active():
            self._first_poll.cancel()
        self._first_poll = None
        return super().deactivate()

    @defer.inlineCallbacks
    def poll(self):
        if self.lastRev is None:
            self.lastRev = yield self.getState("lastRev", {})
        if self.lastRev and isinstance(self.branches, list):
            heads = yield self.remote_heads()
            if heads == self.lastRev:
                return
        yield super().poll()

    @defer.inlineCallbacks
    def remote_heads(self):
        """{branch: commit} of the watched branches, or None when the remote does not say
        (credentials to set up, an unreachable remote: the full poll reports it)."""
        if self._git_auth.is_auth_needed_for_git_command("ls-remote"):
            return None
        try:
            listed = yield self._dovccmd(
                "ls-remote", ["--refs", self.repourl, *(f"refs/heads/{b}" for b in self.branches)])
        except Exception as err:          # GitError, a missing git: the full poll says why
            log.msg(f"gitpoller: ls-remote {self.repourl} failed ({err}); polling in full")
            return None
        heads = {}
        for line in listed.splitlines():
            commit, _, ref = line.partition("\t")
            heads[ref.removeprefix("refs/heads/")] = commit
        return heads
