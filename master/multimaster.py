"""Buildbot's multi-master mode: several masters share the database and pass their
messages through the WAMP router; Buildbot itself runs each scheduler on one of them."""

from __future__ import annotations

from rustfarm.farmfile import Farm

from .failover import MasterFailover


def multi_master_config(farm: Farm) -> dict:
    """The BuildmasterConfig keys of the farm's message queue and master mode."""
    config: dict = {}
    if farm.router is not None:
        config["mq"] = {"type": "wamp", "router_url": farm.router.url,
                        "realm": farm.router.realm, "wamp_debug_level": "error"}
    if farm.multi_master:
        config["multiMaster"] = True
    return config


def multi_master_services(farm: Farm) -> list:
    """With several masters, each declares a silent peer dead after failover.master_timeout
    (master/failover.py); one master has no peer to watch."""
    if not farm.multi_master:
        return []
    return [MasterFailover(master_timeout=farm.failover.master_timeout)]
