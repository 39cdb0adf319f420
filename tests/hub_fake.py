"""A Hugging Face Hub stand-in for :mod:`loopback`: the endpoints ``huggingface_hub`` calls.

It is as strict as the Hub on what the client must get right (checked against
``huggingface_hub/hf_api.py``, ``file_download.py`` and ``utils/_http.py``, which name each
header and error code they rely on):

- ``GET /api/datasets/OWNER/NAME/revision/REV``: the dataset's info with the commit ``sha``
  that ``REV`` (branch, tag, ``refs/convert/parquet``-style ref or commit) points to;
- ``GET /api/datasets/OWNER/NAME/tree/REV[/PATH]?recursive=..&expand=..``: the file tree, each
  file with ``oid``, ``size`` and, for LFS files, ``lfs: {oid: SHA-256, size, pointerSize}``;
  paged by an opaque ``cursor`` in a ``Link: <...>; rel="next"`` header that keeps the revision
  and the query (1000 entries a page, 50 with ``expand``, or :attr:`LoopbackServer.tree_page`);
- ``HEAD|GET /datasets/OWNER/NAME/resolve/REV/PATH``: a small file answers 200 with ``ETag`` (its
  git blob id), ``X-Repo-Commit`` and ``Content-Length``; an LFS file (every ``.parquet``)
  answers ``302`` to a signed URL on a separate CDN origin, with ``X-Linked-Etag`` (its SHA-256),
  ``X-Linked-Size`` and ``X-Repo-Commit``. The CDN serves byte ranges, refuses an unsigned URL
  (403) and, like S3, a request that still carries ``Authorization`` (400);
- errors as the Hub words them: ``X-Error-Code: RepoNotFound`` (401 without a token),
  ``GatedRepo`` (401 without ``Authorization: Bearer``, 403 with a token not on the list),
  ``RevisionNotFound`` and ``EntryNotFound`` (404). The revision is one URL path segment, so a
  revision with a slash must be quoted (``refs%2Fconvert%2Fparquet``), and file paths are
  URL-quoted (``train%200.parquet``), as ``huggingface_hub`` sends them.

Xet storage is not imitated: the fake serves LFS files, which ``huggingface_hub`` downloads over
plain HTTP.
"""

import base64
import dataclasses
import hashlib
import hmac
import json
import urllib.parse
from pathlib import Path

__all__ = ["HubRepo", "commit_of", "handle", "handle_cdn"]

_SIGNING_KEY = b"loopback-cdn"


@dataclasses.dataclass
class HubRepo:
    """A dataset repository: ``{revision: folder}``, optionally gated behind ``token``."""

    revisions: dict
    token: str | None = None

    @classmethod
    def of(cls, value):
        """A :class:`HubRepo` from a folder (served as ``main``), a dict of folders, or itself."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls({name: Path(folder) for name, folder in value.items()})
        return cls({"main": Path(value)})

    def folder(self, revision):
        """The folder a revision name or commit id points to, else None."""
        for name, folder in self.revisions.items():
            if revision in (name, commit_of(name, folder)):
                return name, folder
        return None


def commit_of(name, folder):
    """The (fake, stable) 40-hex commit id of a revision."""
    return hashlib.sha1(f"{name}:{Path(folder).resolve()}".encode()).hexdigest()


def _is_lfs(path):
    return path.suffix == ".parquet"


def _entry(path, folder):
    body = path.read_bytes()
    entry = {
        "type": "file",
        "oid": hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest(),
        "size": len(body),
        "path": path.relative_to(folder).as_posix(),
    }
    if _is_lfs(path):
        entry["lfs"] = {
            "oid": hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "pointerSize": 134,
        }
    return entry


def _error(handler, status, code, message, headers=()):
    body = json.dumps({"error": message}).encode()
    handler._send(
        status,
        body,
        "application/json",
        [("X-Error-Code", code), ("X-Error-Message", message), *headers],
    )


def _authorised(handler, repo_id, repo):
    """Answer the Hub's error and return False when a gated repo is asked without its token."""
    if repo.token is None:
        return True
    sent = handler.headers.get("Authorization", "")
    if not sent.startswith("Bearer "):
        _error(
            handler,
            401,
            "GatedRepo",
            f"Access to dataset {repo_id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
        )
        return False
    if sent != f"Bearer {repo.token}":
        _error(
            handler,
            403,
            "GatedRepo",
            f"Access to dataset {repo_id} is restricted and you are not in the authorized list.",
        )
        return False
    return True


def _sign(path):
    return hmac.new(_SIGNING_KEY, path.encode(), hashlib.sha256).hexdigest()


def handle(handler, segments, query):
    """Answer a Hub request whose URL path is ``segments`` (still quoted); False if not a Hub URL."""
    owner = handler.server.owner
    if segments[:2] == ["api", "datasets"] and len(segments) >= 6:
        repo_id, route, revision, rest = (
            "/".join(segments[2:4]),
            segments[4],
            segments[5],
            segments[6:],
        )
        if route not in ("revision", "tree"):
            return False
    elif segments[:1] == ["datasets"] and len(segments) >= 6 and segments[3] == "resolve":
        repo_id, route, revision, rest = (
            "/".join(segments[1:3]),
            "resolve",
            segments[4],
            segments[5:],
        )
    else:
        return False
    repo = owner.datasets.get(urllib.parse.unquote(repo_id))
    if repo is None:
        status = 404 if handler.headers.get("Authorization") else 401
        _error(handler, status, "RepoNotFound", "Repository not found")
        return True
    revision = urllib.parse.unquote(revision)
    found = repo.folder(revision)
    if found is None:
        _error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return True
    name, folder = found
    commit = commit_of(name, folder)
    path = "/".join(urllib.parse.unquote(part) for part in rest)
    if route == "revision":
        siblings = [{"rfilename": p.relative_to(folder).as_posix()} for p in _files(folder)]
        info = {
            "id": repo_id,
            "sha": commit,
            "private": False,
            "gated": "manual" if repo.token else False,
            "siblings": siblings,
        }
        handler._send(200, json.dumps(info).encode(), "application/json")
        return True
    if not _authorised(handler, repo_id, repo):
        return True
    if route == "tree":
        return _tree(handler, segments, query, folder, path, commit)
    target = folder / path
    if not path or ".." in Path(path).parts or not target.is_file():
        _error(handler, 404, "EntryNotFound", "Entry not found", [("X-Repo-Commit", commit)])
        return True
    entry = _entry(target, folder)
    headers = [("X-Repo-Commit", commit), ("Accept-Ranges", "bytes")]
    if "lfs" in entry:
        cdn_path = f"/lfs/{entry['lfs']['oid']}"
        location = f"{owner.cdn_url}{cdn_path}?signature={_sign(cdn_path)}"
        headers += [
            ("Location", location),
            ("ETag", f'"{entry["oid"]}"'),
            ("X-Linked-Etag", f'"{entry["lfs"]["oid"]}"'),
            ("X-Linked-Size", str(entry["size"])),
        ]
        body = f"Found. Redirecting to {location}".encode()
        handler._send(302, body, "text/plain", headers)
        return True
    headers.append(("ETag", f'"{entry["oid"]}"'))
    handler._send_file(target.read_bytes(), headers)
    return True


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _tree(handler, segments, query, folder, path, commit):
    base = folder / path
    if not base.is_dir():
        _error(handler, 404, "EntryNotFound", f"{path} does not exist", [("X-Repo-Commit", commit)])
        return True
    recursive = query.get("recursive", "false").lower() == "true"
    expand = query.get("expand", "false").lower() == "true"
    children = base.rglob("*") if recursive else base.iterdir()
    entries = []
    for child in sorted(children):
        if child.is_file():
            entries.append(_entry(child, folder))
        else:
            entries.append({"type": "directory", "oid": commit, "size": 0,
                            "path": child.relative_to(folder).as_posix()})  # fmt: skip
    owner = handler.server.owner
    size = owner.tree_page or (50 if expand else 1000)
    start = int(base64.urlsafe_b64decode(query["cursor"]).decode()) if "cursor" in query else 0
    headers = []
    if start + size < len(entries):
        cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        following = urllib.parse.urlencode({**query, "cursor": cursor})
        link = f"{owner.url}/{'/'.join(segments)}?{following}"
        headers.append(("Link", f'<{link}>; rel="next"'))
    body = json.dumps(entries[start : start + size]).encode()
    handler._send(200, body, "application/json", headers)
    return True


def handle_cdn(handler, path, query):
    """Serve an LFS object from the CDN origin: signed URL, no ``Authorization``, byte ranges."""
    if query.get("signature") != _sign(path):
        handler._send(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
        return
    if handler.headers.get("Authorization"):
        body = b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>"
        handler._send(400, body, "application/xml")
        return
    digest = path.rsplit("/", 1)[-1]
    for repo in handler.server.owner.datasets.values():
        for folder in repo.revisions.values():
            for candidate in _files(folder):
                if (
                    _is_lfs(candidate)
                    and hashlib.sha256(candidate.read_bytes()).hexdigest() == digest
                ):
                    headers = [("ETag", f'"{digest}"')]
                    handler._send_file(candidate.read_bytes(), headers)
                    return
    handler._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
