"""`farm status`: the farm's processes, engines, workers and last builds, as this
machine sees them. ``house`` is the farm's Farmhouse (cli/lifecycle.py)."""

from __future__ import annotations

from rustfarm.progress import say

from .api import FarmApi
from .containers import container_names, docker_pools
from .processes import read_pid


def status_of_engines(house) -> None:
    """Each docker pool's engines: whether they answer, and the farm's containers on
    each (a build's container lives as long as its build)."""
    pools = docker_pools(house.farm)
    if not pools:
        return
    try:
        from docker.errors import DockerException
        from requests.exceptions import RequestException
    except ImportError:
        return
    from rustfarm.plumbing import PING_TIMEOUT, docker_client, engine_error
    for pool in pools:
        names = container_names(house, pool)
        placed = pool.worker_engines()
        for engine in pool.engines:
            workers = [w for w, e in placed.items() if e == engine]
            head = f"engine {engine.url} (pool {pool.name}, {len(workers)} worker(s))"
            try:
                client = docker_client(engine.url, engine.tls, timeout=PING_TIMEOUT)
                try:
                    ours = sorted(c.name for c in client.containers.list(all=True)
                                  if c.name in names)
                finally:
                    client.close()
            except (DockerException, RequestException, OSError) as err:
                say(f"{head}: does not answer: {engine_error(err)}; its workers start no "
                    "build until it does")
                continue
            say(f"{head}: answers; " + (f"{len(ours)} build container(s): {', '.join(ours)}"
                                        if ours else "no build container"))

def status(house) -> bool:
    if house.database_server:
        say(house.database_server.status_line())
    if house.farm.multi_master:
        return status_of_masters(house)
    pid = read_pid(house.state.master_pidfile)
    if not pid:
        say(f"farm '{house.farm.farm.name}': master not running (farm up starts it)")
        return False
    api = house.api
    answers = api.answers()
    say(f"master: running (pid {pid}); web UI {house.farm.farm.url} "
        f"{'answers' if answers else 'does not answer'}")
    status_of_engines(house)
    return status_of_workers_and_builds(house, api, answers)

def status_of_masters(house) -> bool:
    """Every master of the farm, each through its own web UI; then the workers and
    builds, which every master sees alike (they share the database)."""
    router = house.router
    if router:
        say(f"router: {'running (pid %d)' % router.pid if router.pid else 'not running'}"
            f" at {house.farm.router.url}")
    supervisor = house.supervisor
    if supervisor and supervisor.pid:
        say(f"supervisor: running (pid {supervisor.pid}); last: {supervisor.last_action()}")
    elif supervisor and house.master_homes():
        say("supervisor: not running (farm up starts it); the router and masters that "
            "stop are not restarted")
    running = house.running_masters()
    answering = None
    for master in house.farm.masters:
        farm = house.farm.as_master(master.name)
        api = FarmApi.for_farm(farm)
        answers = api.answers()
        where = (f"pid {running[master.name]}" if master.name in running else
                 f"on {master.host}" if master.host else "not running")
        say(f"master {master.name}: {where}; web UI {farm.farm.url} "
            f"{'answers' if answers else 'does not answer'}")
        if answers and answering is None:
            answering = api
    status_of_engines(house)
    if answering is None:
        return False
    return status_of_workers_and_builds(house, answering, True)

def status_of_workers_and_builds(house, api: FarmApi, answers: bool) -> bool:
    local = set(house.local_workers())
    connected = {w["name"]: w for w in api.workers()} if answers else {}
    connected.pop("__Janitor", None)
    for name in sorted(local | set(connected)):
        proc = read_pid(house.state.worker(name) / "twistd.pid") if name in local else None
        link = "connected" if connected.get(name, {}).get("connected_to") else "not connected"
        where = f"pid {proc}" if proc else ("latent" if name not in local else "not running")
        say(f"worker {name}: {where}, {link}")
    if answers:
        for build in api.recent_builds(10):
            say(f"build {build['builder']} #{build['number']}: {build['state']}")
    return answers
