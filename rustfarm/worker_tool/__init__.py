"""The worker tool: what a build runs on its worker besides cargo. Standard library
only, since it runs on whatever Python the worker has.

Its commands (``commands.py`` lists them) each answer with one JSON object on
standard output (``protocol.py``), which the master's steps read; what a person
reads goes to standard error. The rustc wrappers of the compile cache
(``crate_cache.py``, ``sccache_pipelined.py``, behind the shell scripts in
``wrappers/``) are commands of it too.

Workers run it as one file, a zip application assembled from this package
(``rustfarm/worker_tool_file.py``): the target images carry it, local workers run the
farm's own, and the master sends it to a worker that has another version.
"""
