"""rustfarm's helper on workers, sent by the master at the start of each build.

    python3 farm_worker_tool.py unpack SNAPSHOT.tar.gz DEST
        Unpack a source snapshot, touching only files whose content changed:
        unchanged files keep their modification time, so cargo recompiles only
        the crates that changed; files the snapshot no longer has are removed.

    python3 farm_worker_tool.py package ARCHIVE BINDIR BINARY...
        Pack built binaries into a reproducible .tar.gz (sorted names, zero
        timestamps and owners) and write its SHA256SUMS line.

Only the standard library: it runs on whatever Python the worker has.
"""

import gzip
import hashlib
import io
import os
import shutil
import sys
import tarfile


def unpack(archive, dest):
    os.makedirs(dest, exist_ok=True)
    wanted = set()
    changed = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("..", "/")) or name == ".":
                continue
            path = os.path.join(dest, name)
            wanted.add(name)
            parent = os.path.dirname(name)
            while parent:
                wanted.add(parent)
                parent = os.path.dirname(parent)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
                continue
            if not member.isfile():
                continue
            data = tar.extractfile(member).read()
            try:
                with open(path, "rb") as existing:
                    if existing.read() == data:
                        continue
            except OSError:
                pass
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(data)
            os.chmod(path, 0o755 if member.mode & 0o111 else 0o644)
            changed += 1
    removed = 0
    for root, dirs, files in os.walk(dest, topdown=False):
        for entry in files + dirs:
            path = os.path.join(root, entry)
            if os.path.relpath(path, dest) not in wanted:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
                removed += 1
    print(f"unpacked {len(wanted)} entries: {changed} written, {removed} removed")


def package(archive, bindir, binaries):
    missing = [b for b in binaries if not os.path.isfile(os.path.join(bindir, b))]
    if missing:
        present = sorted(os.listdir(bindir)) if os.path.isdir(bindir) else []
        print(f"error: binary {', '.join(missing)} not found in {bindir}", file=sys.stderr)
        print(f"  files there: {', '.join(present) or 'none'}", file=sys.stderr)
        print("  (check `binaries` in farm.yaml against the [[bin]] names in Cargo.toml)",
              file=sys.stderr)
        sys.exit(1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for binary in sorted(binaries):
            info = tar.gettarinfo(os.path.join(bindir, binary), arcname=binary)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755
            with open(os.path.join(bindir, binary), "rb") as handle:
                tar.addfile(info, handle)
    with open(archive, "wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
            gz.write(buffer.getvalue())
    with open(archive, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open("SHA256SUMS", "w") as sums:
        sums.write(f"{digest}  {os.path.basename(archive)}\n")
    for binary in sorted(binaries):
        size = os.path.getsize(os.path.join(bindir, binary))
        print(f"packed {binary} ({size} bytes)")
    print(f"{digest}  {os.path.basename(archive)}")


def main(argv):
    if len(argv) >= 3 and argv[0] == "unpack":
        unpack(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "package":
        package(argv[1], argv[2], argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
