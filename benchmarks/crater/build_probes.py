"""Inside a target's image (benchmarks/crater.py runs it there): build each probe
crate under /probes for the image's target, one after another in one target
directory, offline, its crates from the farm's store; write /results/TARGET.json:
{crate: {"ok": bool, "seconds": float, "error": first error line or ""}}."""

import json
import os
import subprocess
import sys
import time


def first_error(stderr: str) -> str:
    lines = stderr.splitlines()
    for line in lines:
        if line.startswith("error") and "could not compile" not in line:
            return line.strip()[:300]
    return (lines[-1].strip() if lines else "")[:300]


def main() -> None:
    target = os.environ["RUSTFARM_TARGET"]
    results = {}
    for crate in sys.argv[1:]:
        probe = os.path.join("/probes", crate)
        started = time.monotonic()
        done = subprocess.run(["cargo", "build", "--release", "--offline", "--locked",
                               "--config", os.path.join(probe, "crates.toml"),
                               "--target", target], cwd=probe, capture_output=True, text=True)
        results[crate] = {"ok": done.returncode == 0,
                          "seconds": round(time.monotonic() - started, 1),
                          "error": "" if done.returncode == 0 else first_error(done.stderr)}
        print(f"{target} {crate}: {'ok' if done.returncode == 0 else 'FAILED'}", flush=True)
    with open(f"/results/{target}.json", "w", encoding="utf-8") as out:
        json.dump(results, out, indent=1, sort_keys=True)


main()
