"""Where releases are kept: the artifacts directory, or an S3 bucket (farm.yaml's
``artifacts.s3``) reached as a path (cloudpathlib's S3Path: iterdir, stat, read,
write, rmtree), so the release code reads both the same way.

With S3, a build writes its files to a staging directory on the master and the
publish step uploads them; the web server lists the bucket and sends downloads to
presigned URLs. The bucket's credentials come from the secret store (`farm
artifacts-credentials`) or, without them, from boto3's own chain (an instance
profile); only the master holds them.
"""

from __future__ import annotations

import mimetypes
import shutil
from pathlib import Path
from typing import Union

from .errors import FarmError
from .farmfile.model import ArtifactSettings
from .plumbing import partial_path
from .state import SecretStore, StateDir

KEY_ID_SECRET = "artifacts-s3-access-key-id"
SECRET_KEY_SECRET = "artifacts-s3-secret-access-key"
# How long a download link to a bucket's object holds (the web server makes a new one
# for each request).
LINK_SECONDS = 600

StorePath = Union[Path, "S3Path"]      # noqa: F821 (cloudpathlib's, imported when used)


class StoreError(FarmError):
    """The artifact store cannot be reached or written, saying why."""


def _content_type(path) -> tuple[str, None]:
    """A key's Content-Type, and never a Content-Encoding: an archive is served as it
    is, not unpacked by clients (whose SHA256SUMS would then not match)."""
    kind, encoding = mimetypes.guess_type(str(path))
    if encoding == "gzip":
        return "application/gzip", None
    if encoding:
        return "application/octet-stream", None
    return kind or "application/octet-stream", None


def s3_client(settings: ArtifactSettings, paths: StateDir):
    from cloudpathlib import S3Client

    from boto3 import Session

    s3 = settings.s3
    store = SecretStore(paths.secrets)
    key_id, secret = store.read(KEY_ID_SECRET), store.read(SECRET_KEY_SECRET)
    credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret} \
        if key_id and secret else {}
    session = Session(region_name=s3.region or "us-east-1", **credentials)
    return S3Client(boto3_session=session, endpoint_url=s3.endpoint_url or None,
                    local_cache_dir=str(paths.root / "s3-cache"),
                    content_type_method=_content_type)


def store_root(settings: ArtifactSettings, paths: StateDir) -> StorePath:
    """The top of the store: the artifacts directory, or the bucket's prefix."""
    if settings.s3 is None:
        return paths.artifacts
    from cloudpathlib import S3Path

    prefix = settings.s3.prefix.rstrip("/")
    return S3Path(f"s3://{settings.s3.bucket}/{prefix}".rstrip("/"),
                  client=s3_client(settings, paths))


def is_remote(path: StorePath) -> bool:
    return not isinstance(path, Path)


def remove_tree(path: StorePath) -> None:
    if is_remote(path):
        path.rmtree()
    else:
        shutil.rmtree(path, ignore_errors=True)


def write_text(path: StorePath, text: str) -> None:
    """A whole file at once: a reader sees the old one or the new one."""
    if is_remote(path):
        path.write_text(text)      # one PUT: S3 replaces an object whole
        return
    partial = partial_path(path)
    partial.write_text(text)
    partial.replace(path)


def publish(staged: Path, destination: StorePath) -> list[str]:
    """Upload the files of ``staged`` to ``destination`` (the archive last, which makes
    the target appear in its release), then remove them; the names uploaded."""
    if not is_remote(destination):
        return []
    names = sorted((p.name for p in staged.iterdir() if p.is_file()),
                   key=lambda n: (n == "SHA256SUMS", n))
    try:
        for name in names:
            (destination / name).upload_from(staged / name, force_overwrite_to_cloud=True)
    except Exception as err:       # botocore's and cloudpathlib's errors both
        raise StoreError(f"could not upload to {destination}: {err}") from None
    shutil.rmtree(staged, ignore_errors=True)
    return names


def download_link(path: StorePath) -> str | None:
    """A presigned URL of a bucket's object (None for a local file)."""
    if not is_remote(path):
        return None
    return path.as_url(presign=True, expire_seconds=LINK_SECONDS)
