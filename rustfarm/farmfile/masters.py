"""The ``masters`` and ``router`` sections: one master, or several in Buildbot's
multi-master mode (a shared PostgreSQL database and a WAMP router)."""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

from .model import (DbSettings, FailoverSettings, FarmSettings, MasterSettings, RouterSettings,
                    WwwSettings)
from .reader import NAME_RE, Section, type_name

MASTER_KEYS = ("name", "host", "www_port", "worker_port")
ROUTER_KEYS = ("url", "realm")
FAILOVER_KEYS = ("master_timeout",)
DEFAULT_REALM = "buildbot"
# Each master polls the database and holds its own connections: more would be a cluster.
MAX_MASTERS = 16


def _router_url_check(value: str) -> str:
    return "" if re.match(r"^wss?://[^/\s]+(/\S*)?$", value) else \
        "must be a ws:// or wss:// URL such as ws://127.0.0.1:8081/ws"


def _router_host_problem(host: str) -> str:
    """Buildbot connects to the router without authentication: a public one is refused."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ""   # a host name: where it points is the network's business
    if address.is_loopback or address.is_private or address.is_link_local:
        return ""
    return (f"{host} is a public address; Buildbot's masters join the router without "
            "authentication, so keep it on loopback or a private network")


def read_masters(section: Callable[..., Section], top: Section, farm: FarmSettings,
                 www: WwwSettings) -> tuple[MasterSettings, ...]:
    """The farm's masters: ``masters: N`` numbers them from www.port and
    farm.worker_port; a list names each with its ports; none is one master."""
    if not top.has("masters"):
        return (MasterSettings("master", www.port, farm.worker_port),)
    raw, line = top.raw("masters"), top.key_line("masters")
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 1 <= raw <= MAX_MASTERS:
            top.integer("masters", minimum=1, maximum=MAX_MASTERS)
            return (MasterSettings("master", www.port, farm.worker_port),)
        count = raw
        return tuple(MasterSettings(f"master-{i}", www.port + i - 1, farm.worker_port + i - 1)
                     for i in range(1, count + 1))
    if not isinstance(raw, list) or not raw:
        top.error(line, "masters", "must be a number of masters or a list of them "
                                   f"(name, host, www_port, worker_port), not {type_name(raw)}")
        return (MasterSettings("master", www.port, farm.worker_port),)
    if len(raw) > MAX_MASTERS:
        top.error(line, "masters", f"at most {MAX_MASTERS} masters, not {len(raw)}")
    masters = []
    for index, node in enumerate(raw):
        s = section(node, f"masters[{index}]", MASTER_KEYS, top.item_line("masters", index))
        name = s.text("name", f"master-{index + 1}")
        if name and not NAME_RE.match(name):
            s.error(s.key_line("name"), f"masters[{index}].name",
                    "names use lower-case letters, digits, '-', '_' and '.'")
        masters.append(MasterSettings(
            name=name or f"master-{index + 1}",
            www_port=s.integer("www_port", www.port + index, minimum=1, maximum=65535),
            worker_port=s.integer("worker_port", farm.worker_port + index, minimum=1,
                                  maximum=65535),
            host=s.text("host", ""),
        ))
    return tuple(masters)


def check_masters(top: Section, masters: tuple[MasterSettings, ...], db: DbSettings,
                  router: RouterSettings | None, other_ports: dict[int, str]) -> None:
    """Refuse what would break once started: shared ports, several masters on SQLite
    or without a router."""
    if not top.has("masters"):
        return   # one master on www.port and farm.worker_port, checked with them
    line = top.key_line("masters")
    seen_names: set[str] = set()
    seen_ports: dict[tuple[str, int], str] = {}
    for index, master in enumerate(masters):
        where = f"masters[{index}]" if isinstance(top.raw("masters"), list) else "masters"
        item_line = top.item_line("masters", index) if where != "masters" else line
        if master.name in seen_names:
            top.error(item_line, f"{where}.name", f"two masters are named '{master.name}'")
        seen_names.add(master.name)
        for port, what in ((master.www_port, "web UI"), (master.worker_port, "worker")):
            key = (master.host, port)
            owner = seen_ports.get(key) or (other_ports.get(port) if not master.host else None)
            if owner:
                top.error(item_line, where, f"master '{master.name}''s {what} port {port} "
                                            f"is already {owner}")
            seen_ports[key] = f"master '{master.name}''s {what} port"
        if master.host and db.runs_locally:
            top.error(item_line, f"{where}.host", "a master on another machine cannot reach "
                                                  "the PostgreSQL server farm up runs on this "
                                                  "one's loopback (db.server: local)")
    if len(masters) < 2:
        return
    if db.url.startswith("sqlite:"):
        top.error(line, "masters", f"{len(masters)} masters share one database, and SQLite "
                                   "serves one master: set db.url to a postgresql:// URL")
    if router is None and not top.has("router"):
        top.error(line, "masters", f"{len(masters)} masters pass their messages through a "
                                   "WAMP router: add router: {url: ws://127.0.0.1:PORT/ws}")


def read_router(section: Callable[..., Section], top: Section) -> RouterSettings | None:
    if not top.has("router"):
        return None
    s = section(top.raw("router"), "router", ROUTER_KEYS, top.key_line("router"))
    url = s.text("url", check=_router_url_check)
    realm = s.text("realm", DEFAULT_REALM)
    if realm is not None and not re.match(r"^[a-z0-9_.]+$", realm):
        s.error(s.key_line("realm"), "router.realm",
                "realms use lower-case letters, digits, '_' and '.'")
    if not url or _router_url_check(url):
        return None
    router = RouterSettings(url=url, realm=realm or DEFAULT_REALM)
    problem = _router_host_problem(router.host)
    if problem:
        s.error(s.key_line("url"), "router.url", problem)
    return router


def read_failover(section: Callable[..., Section], top: Section) -> FailoverSettings:
    """``failover.master_timeout``: long enough for a busy master's heartbeat to arrive
    (it beats three times per timeout), short enough that a dead master's builds do not
    wait Buildbot's own ten minutes."""
    default = FailoverSettings()
    if not top.has("failover"):
        return default
    s = section(top.raw("failover"), "failover", FAILOVER_KEYS, top.key_line("failover"))
    return FailoverSettings(master_timeout=s.integer(
        "master_timeout", default.master_timeout, minimum=15, maximum=600,
        why="seconds; Buildbot itself waits 600"))
