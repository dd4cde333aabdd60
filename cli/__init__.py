"""The `farm` command: the top layer. It reads farm.yaml through the core (rustfarm),
builds images (rustfarm.images), starts and stops the master's and workers' processes,
and talks to a running master only through its REST API (api.py)."""
