"""A local HTTP server that speaks the few Hugging Face Hub endpoints hf-rerank uses.

What it implements, in the shapes huggingface_hub 2.x sends and expects (read from its source:
``hf_api.py``, ``_commit_api.py``, ``lfs.py``, ``file_download.py``, ``_snapshot_download.py``):

- ``GET /api/whoami-v2``: the token's user (401 for an unknown token);
- ``POST /api/repos/create``: a repository with an initial ``.gitattributes`` commit on ``main``
  (409 when it exists, 403 outside the token's namespace);
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: repository info with
  ``sha`` and ``siblings``; ``GET /api/models/{repo}/tree/{rev}?recursive=true``: the file tree;
- ``POST /api/validate-yaml``: card metadata accepted when it parses as a YAML mapping;
- ``POST /api/models/{repo}/preupload/{rev}``: ``lfs`` for weights, pickles, images and any
  binary sample, ``regular`` otherwise (as the Hub's default ``.gitattributes`` decides);
- ``POST /{repo}.git/info/lfs/objects/batch`` (basic transfer), ``PUT /lfs-upload/{oid}`` and
  the verify call: LFS objects are stored by sha256 and checked against it;
- ``POST /api/models/{repo}/commit/{rev}``: the NDJSON commit (``header``, ``file``,
  ``lfsFile``, ``deletedFile``, ``deletedFolder``), applied to the branch;
- ``POST /api/models/{repo}/branch/{name}``: a branch from ``startingPoint`` or ``main``;
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: file content with ``X-Repo-Commit`` and
  ``ETag`` (sha256 for LFS files, the git blob sha1 otherwise), 404 ``EntryNotFound``.

Not implemented: Xet storage (tests set ``HF_HUB_DISABLE_XET=1``), pull requests, tags, the
CDN redirect of LFS downloads, pagination (trees here are small). Private repositories need the
owner's token to be read. Everything received is kept on :class:`FakeHub` for assertions, and
:meth:`FakeHub.fail` injects HTTP errors to exercise retries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".pkl", ".png", ".jpg", ".onnx", ".h5", ".msgpack")
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.content).hexdigest() if self.lfs else git_blob_sha1(self.content)


@dataclass
class Commit:
    oid: str
    message: str
    parent: str | None
    files: dict[str, StoredFile]
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)

    def files(self, revision: str) -> dict[str, StoredFile] | None:
        oid = self.branches.get(revision, revision if revision in self.commits else None)
        return None if oid is None else self.commits[oid].files

    def head(self, revision: str) -> str | None:
        return self.branches.get(revision, revision if revision in self.commits else None)

    def history(self, branch: str) -> list[Commit]:
        """Commits of ``branch``, newest first."""
        out, oid = [], self.branches.get(branch)
        while oid is not None:
            out.append(self.commits[oid])
            oid = self.commits[oid].parent
        return out


class FakeHub:
    """State of the fake Hub plus the server thread; use as a context manager."""

    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)  # token -> user name
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.headers_seen: list[dict[str, str]] = []
        self.bodies_seen: list[bytes] = []
        self._failures: list[list] = []  # [method, regex, status, remaining]
        self._lock = threading.Lock()
        self._commit_counter = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path_pattern: str, status: int, times: int) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``path_pattern`` with ``status``."""
        self._failures.append([method, re.compile(path_pattern), status, times])

    def new_commit(
        self, repo: Repo, branch: str, message: str, files: dict[str, StoredFile], added: list[str], deleted: list[str]
    ) -> Commit:
        with self._lock:
            self._commit_counter += 1
            parent = repo.branches.get(branch)
            oid = hashlib.sha1(f"{repo.repo_id}:{branch}:{self._commit_counter}:{message}".encode()).hexdigest()
            commit = Commit(oid, message, parent, files, added, deleted)
            repo.commits[oid] = commit
            repo.branches[branch] = oid
            return commit

    def _handler_class(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            # ---------------------------------------------------------------- plumbing
            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(
                self,
                status: int,
                payload=None,
                *,
                headers: dict | None = None,
                raw: bytes | None = None,
                head: bool = False,
            ) -> None:
                data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(data)
                hub.requests.append((self.command, self.path, status))

            def _error(self, status: int, code: str | None, message: str, head: bool = False) -> None:
                headers = {"X-Error-Message": message}
                if code:
                    headers["X-Error-Code"] = code
                self._send(status, {"error": message}, headers=headers, head=head)

            def _user(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                return hub.tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None

            def _injected(self) -> bool:
                path = urlsplit(self.path).path
                for failure in hub._failures:
                    method, pattern, status, remaining = failure
                    if remaining > 0 and method == self.command and pattern.search(path):
                        failure[3] -= 1
                        self._body()
                        self._error(status, None, "injected failure", head=self.command == "HEAD")
                        return True
                return False

            def _repo(self, repo_id: str, *, write: bool, head: bool = False) -> Repo | None:
                repo = hub.repos.get(repo_id)
                user = self._user()
                if write and user is None:
                    self._error(401, None, "Invalid credentials in Authorization header", head)
                    return None
                if repo is None or (repo.private and user != repo_id.split("/")[0]):
                    self._error(404 if user else 401, "RepoNotFound", "Repository not found", head)
                    return None
                if write and user != repo_id.split("/")[0]:
                    self._error(403, None, "You don't have the rights to write to this repository", head)
                    return None
                return repo

            def _dispatch(self, routes) -> None:
                hub.headers_seen.append(dict(self.headers))
                if self._injected():
                    return
                path = unquote(urlsplit(self.path).path)
                for pattern, handler in routes:
                    match = re.fullmatch(pattern, path)
                    if match:
                        handler(*match.groups())
                        return
                self._error(404, None, f"no route for {self.command} {path}", self.command == "HEAD")

            def do_GET(self):
                self._dispatch(
                    [
                        (r"/api/whoami-v2", self.whoami),
                        (r"/api/models/([^/]+/[^/]+)/revision/(.+)", self.info),
                        (r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", self.tree),
                        (r"/api/models/([^/]+/[^/]+)", lambda repo_id: self.info(repo_id, "main")),
                        (r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.resolve),
                    ]
                )

            def do_HEAD(self):
                self._dispatch(
                    [(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", lambda r, v, p: self.resolve(r, v, p, head=True))]
                )

            def do_PUT(self):
                self._dispatch([(r"/lfs-upload/([0-9a-f]{64})", self.lfs_upload)])

            def do_POST(self):
                self._dispatch(
                    [
                        (r"/api/repos/create", self.create_repo),
                        (r"/api/validate-yaml", self.validate_yaml),
                        (r"/api/models/([^/]+/[^/]+)/preupload/(.+)", self.preupload),
                        (r"/api/models/([^/]+/[^/]+)/commit/(.+)", self.commit),
                        (r"/api/models/([^/]+/[^/]+)/branch/(.+)", self.create_branch),
                        (r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", self.lfs_batch),
                        (r"/([^/]+/[^/]+)\.git/info/lfs/objects/verify", self.lfs_verify),
                    ]
                )

            # ---------------------------------------------------------------- endpoints
            def whoami(self):
                user = self._user()
                if user is None:
                    self._error(401, None, "Invalid credentials in Authorization header")
                    return
                self._send(
                    200,
                    {
                        "type": "user",
                        "name": user,
                        "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"role": "write"}},
                    },
                )

            def create_repo(self):
                body = json.loads(self._body() or b"{}")
                user = self._user()
                if user is None:
                    self._error(401, None, "Invalid credentials in Authorization header")
                    return
                namespace = body.get("organization") or user
                if namespace != user:
                    self._error(403, None, "You don't have the rights to create a model under this namespace")
                    return
                repo_id = f"{namespace}/{body['name']}"
                if repo_id in hub.repos:
                    self._error(409, None, "You already created this model repo")
                    return
                private = body.get("visibility", "private" if body.get("private") else "public") == "private"
                repo = Repo(repo_id, private)
                hub.repos[repo_id] = repo
                hub.new_commit(
                    repo,
                    "main",
                    "initial commit",
                    {".gitattributes": StoredFile(GITATTRIBUTES, False)},
                    [".gitattributes"],
                    [],
                )
                self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})

            def info(self, repo_id: str, revision: str):
                repo = self._repo(repo_id, write=False)
                if repo is None:
                    return
                files = repo.files(revision)
                if files is None:
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return
                self._send(
                    200,
                    {
                        "id": repo_id,
                        "modelId": repo_id,
                        "author": repo_id.split("/")[0],
                        "sha": repo.head(revision),
                        "private": repo.private,
                        "siblings": [{"rfilename": name} for name in sorted(files)],
                    },
                )

            def tree(self, repo_id: str, revision: str, prefix: str | None):
                repo = self._repo(repo_id, write=False)
                if repo is None:
                    return
                files = repo.files(revision)
                if files is None:
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return
                recursive = parse_qs(urlsplit(self.path).query).get("recursive", ["false"])[0].lower() == "true"
                base = f"{prefix.rstrip('/')}/" if prefix else ""
                entries, folders = [], set()
                for name, stored in sorted(files.items()):
                    if not name.startswith(base):
                        continue
                    rest = name[len(base) :]
                    parts = rest.split("/")
                    for depth in range(1, len(parts)):
                        folder = base + "/".join(parts[:depth])
                        if (recursive or depth == 1) and folder not in folders:
                            folders.add(folder)
                            entries.append(
                                {"type": "directory", "oid": git_blob_sha1(folder.encode()), "size": 0, "path": folder}
                            )
                    if not recursive and len(parts) > 1:
                        continue
                    entry = {
                        "type": "file",
                        "oid": git_blob_sha1(stored.content),
                        "size": len(stored.content),
                        "path": name,
                    }
                    if stored.lfs:
                        entry["lfs"] = {"oid": stored.etag, "size": len(stored.content), "pointerSize": 134}
                    entries.append(entry)
                self._send(200, entries)

            def resolve(self, repo_id: str, revision: str, path: str, head: bool = False):
                repo = self._repo(repo_id, write=False, head=head)
                if repo is None:
                    return
                files = repo.files(revision)
                if files is None:
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
                    return
                stored = files.get(path)
                commit_header = {"X-Repo-Commit": repo.head(revision)}
                if stored is None:
                    self._send(
                        404,
                        {"error": "Entry not found"},
                        head=head,
                        headers={
                            **commit_header,
                            "X-Error-Code": "EntryNotFound",
                            "X-Error-Message": "Entry not found",
                        },
                    )
                    return
                self._send(200, raw=stored.content, head=head, headers={**commit_header, "ETag": f'"{stored.etag}"'})

            def validate_yaml(self):
                body = json.loads(self._body())
                content = body["content"]
                errors = []
                if content.startswith("---"):
                    try:
                        metadata = yaml.safe_load(content.split("---", 2)[1])
                        if not isinstance(metadata, dict):
                            errors.append({"message": "metadata is not a mapping"})
                    except yaml.YAMLError as error:
                        errors.append({"message": f"invalid YAML: {error}"})
                self._send(400 if errors else 200, {"errors": errors, "warnings": []})

            def preupload(self, repo_id: str, revision: str):
                body = json.loads(self._body())
                if self._repo(repo_id, write=True) is None:
                    return
                out = []
                for item in body["files"]:
                    sample = base64.b64decode(item["sample"])
                    lfs = item["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or item["size"] > 10_000_000
                    out.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
                self._send(200, {"files": out, "commitOid": hub.repos[repo_id].head(revision)})

            def lfs_batch(self, repo_id: str):
                body = json.loads(self._body())
                if self._repo(repo_id, write=True) is None:
                    return
                objects = []
                for item in body["objects"]:
                    entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
                    if item["oid"] not in hub.lfs_objects:
                        entry["actions"] = {
                            "upload": {"href": f"{hub.url}/lfs-upload/{item['oid']}"},
                            "verify": {"href": f"{hub.url}/{repo_id}.git/info/lfs/objects/verify"},
                        }
                    objects.append(entry)
                self._send(200, {"transfer": "basic", "objects": objects})

            def lfs_upload(self, oid: str):
                content = self._body()
                if hashlib.sha256(content).hexdigest() != oid:
                    self._error(400, None, "sha256 does not match the oid")
                    return
                hub.lfs_objects[oid] = content
                self._send(200, {})

            def lfs_verify(self, repo_id: str):
                body = json.loads(self._body())
                stored = hub.lfs_objects.get(body["oid"])
                if stored is None or len(stored) != body["size"]:
                    self._error(422, None, "object not uploaded")
                    return
                self._send(200, {})

            def commit(self, repo_id: str, revision: str):
                data = self._body()
                hub.bodies_seen.append(data)
                repo = self._repo(repo_id, write=True)
                if repo is None:
                    return
                if revision not in repo.branches:
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return
                files = dict(repo.files(revision))
                message, added, deleted = "", [], []
                for line in data.decode().splitlines():
                    item = json.loads(line)
                    key, value = item["key"], item["value"]
                    if key == "header":
                        message = value["summary"]
                        parent = value.get("parentCommit")
                        if parent and parent != repo.branches[revision]:
                            self._error(412, None, "parent commit is not the head of the branch")
                            return
                    elif key == "file":
                        files[value["path"]] = StoredFile(base64.b64decode(value["content"]), False)
                        added.append(value["path"])
                    elif key == "lfsFile":
                        content = hub.lfs_objects.get(value["oid"])
                        if content is None:
                            self._error(422, None, f"LFS object {value['oid']} was never uploaded")
                            return
                        files[value["path"]] = StoredFile(content, True)
                        added.append(value["path"])
                    elif key == "deletedFile":
                        if value["path"] not in files:
                            self._error(404, "EntryNotFound", "A file with this name doesn't exist")
                            return
                        del files[value["path"]]
                        deleted.append(value["path"])
                    elif key == "deletedFolder":
                        prefix = value["path"].rstrip("/") + "/"
                        for name in [n for n in files if n.startswith(prefix)]:
                            del files[name]
                            deleted.append(name)
                    else:
                        self._error(400, None, f"unknown commit line {key!r}")
                        return
                commit = hub.new_commit(repo, revision, message, files, added, deleted)
                self._send(
                    200,
                    {"success": True, "commitOid": commit.oid, "commitUrl": f"{hub.url}/{repo_id}/commit/{commit.oid}"},
                )

            def create_branch(self, repo_id: str, branch: str):
                body = json.loads(self._body() or b"{}")
                repo = self._repo(repo_id, write=True)
                if repo is None:
                    return
                if branch in repo.branches:
                    self._error(409, None, f"Reference refs/heads/{branch} already exists")
                    return
                start = repo.head(body.get("startingPoint") or "main")
                if start is None:
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {body.get('startingPoint')}")
                    return
                repo.branches[branch] = start
                self._send(200, {})

        return Handler
