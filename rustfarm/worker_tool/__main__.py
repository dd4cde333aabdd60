"""``python3 -m rustfarm.worker_tool COMMAND ...``: the tool from the farm's
package (workers run it from the zip application rustfarm/worker_tool_file.py assembles)."""

from .commands import main

main()
