"""A local emulator of the Hugging Face Hub HTTP API, for tests.

The real ``huggingface_hub`` and ``datasets`` clients talk to it exactly as they would talk to
huggingface.co (point ``HF_ENDPOINT`` at :attr:`HubEmulator.url`, see ``tests/fixtures_hub.py``).
Everything is kept in memory, behind one lock; the server is a ``ThreadingHTTPServer`` bound to
127.0.0.1 on a free port, served from a daemon thread.

What is emulated (the routes and headers were read from huggingface_hub 2.4 / datasets 5.2):

* ``GET /api/whoami-v2``; ``POST /api/validate-yaml``; ``GET /api/{type}s/{repo}/auth-check[/write]``
  (``HfApi.auth_check``); writes and repo creation only in the token user's own namespace or its
  orgs (403 otherwise, as on the Hub);
* fault mode: ``hanging = True`` reads every request and never answers it;
* ``POST /api/repos/create`` (409 with ``url`` when the repo exists), ``DELETE /api/repos/delete``,
  ``PUT /api/{type}s/{repo}/settings``; ``GET /api/{type}s`` (a plain listing, ``author``/``search``);
* ``GET /api/{type}s/{repo}`` and ``.../revision/{rev}`` (``sha``, ``siblings``, ``private``,
  ``cardData`` from the README.md YAML front matter, ``lastModified``, ...; ``blobs=1`` adds sizes);
* ``GET .../tree/{rev}[/{path}]`` (``recursive``, ``expand``, Link-header pagination),
  ``POST .../paths-info/{rev}``, ``GET .../refs``, ``GET .../commits/{rev}``;
* ``POST .../preupload/{rev}``, ``POST {prefix}{repo}.git/info/lfs/objects/batch`` + ``PUT`` of the
  blob (basic LFS transfer), ``POST .../commit/{rev}`` (NDJSON: header, file, lfsFile, deletedFile,
  deletedFolder; ``parentCommit`` checked, 412 when stale; ``create_pr=1`` opens ``refs/pr/N``);
* ``POST``/``DELETE .../branch/{name}``, ``POST .../tag/{rev}``, ``DELETE .../tag/{name}``;
* ``GET``/``HEAD {prefix}{repo}/resolve/{rev}/{path}`` (also ``raw``), with ``ETag``,
  ``X-Repo-Commit``, ``Content-Length``, ``X-Linked-Etag``/``X-Linked-Size`` for LFS files and
  ``Range`` support; errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
  ``EntryNotFound``) as huggingface_hub expects.

Files matching the ``filter=lfs`` patterns of the repo's ``.gitattributes`` (every new repo gets the
Hub's default one, ``*.parquet`` included), binary samples and files over 10 MB are handled as LFS
files, as on the Hub: ``Dataset.push_to_hub`` relies on that (it deletes its temporary shards right
after the pre-upload). Xet is not emulated: clients must run with ``HF_HUB_DISABLE_XET=1``.

Tokens: :data:`DEFAULT_TOKEN` belongs to :data:`DEFAULT_USER`; :meth:`HubEmulator.add_token` adds
others (optionally read-only). Unknown tokens get 401; writes need a write token; private repos
need any valid token. Tokens are never logged: :attr:`HubEmulator.requests` only keeps the method,
path, query and status of each request.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import itertools
import json
import re
import socket
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

DEFAULT_TOKEN = "hf_test_token_not_real"
DEFAULT_USER = "test-user"
DEFAULT_ORG = "test-org"

LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
TREE_PAGE_SIZE = 1000
TREE_PAGE_SIZE_EXPANDED = 50

_TYPE_FROM_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9_\-]+")
_HEX_RE = re.compile(r"[0-9a-f]{7,40}")

DEFAULT_GITATTRIBUTES = "\n".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text"
    for pattern in [
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib",
        "*.lfs.*", "*.lz4", "*.mds", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz",
        "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar",
        "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
        "*.xz", "*.zip", "*.zst", "*tfevents*", "*.mp3", "*.ogg", "*.wav", "*.flac", "*.jpg",
        "*.jpeg", "*.png", "*.webp", "*.gif", "*.mp4", "*.webm",
    ]
) + "\n"  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Data model


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


@dataclass(frozen=True)
class RepoFileData:
    """One file of a commit's tree. ``blob_id`` is the git oid of what git stores (the LFS pointer
    for LFS files)."""

    path: str
    data: bytes = field(repr=False)
    lfs: bool
    sha256: str
    blob_id: str

    @classmethod
    def make(cls, path: str, data: bytes, lfs: bool) -> RepoFileData:
        sha = hashlib.sha256(data).hexdigest()
        blob = git_blob_oid(lfs_pointer(sha, len(data)) if lfs else data)
        return cls(path=path, data=data, lfs=lfs, sha256=sha, blob_id=blob)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    def lfs_info(self) -> dict[str, Any]:
        return {
            "oid": self.sha256,
            "size": self.size,
            "pointerSize": len(lfs_pointer(self.sha256, self.size)),
        }


@dataclass(frozen=True)
class Commit:
    oid: str
    parents: tuple[str, ...]
    title: str
    message: str
    author: str
    date: datetime
    files: Mapping[str, RepoFileData] = field(repr=False)


@dataclass(frozen=True)
class CommitRecord:
    """What :meth:`HubEmulator.commits` returns (newest first)."""

    oid: str
    title: str
    message: str
    author: str
    date: datetime
    parents: tuple[str, ...]
    files: tuple[str, ...]  # the whole tree at that commit
    changed: tuple[str, ...]  # paths added, modified or deleted by this commit


@dataclass
class PullRequest:
    num: int
    title: str
    author: str
    base_branch: str
    created_at: datetime
    status: str = "open"


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: datetime
    uid: str
    gated: Any = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    pr_info: dict[int, PullRequest] = field(default_factory=dict)
    next_discussion: int = 1

    @property
    def author(self) -> str:
        return self.repo_id.split("/")[0]

    @property
    def url_path(self) -> str:
        return _URL_PREFIX[self.repo_type] + self.repo_id


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int

    def __str__(self) -> str:
        return f"{self.method} {self.path}" + (f"?{self.query}" if self.query else "")


@dataclass(frozen=True)
class _TokenInfo:
    user: str
    write: bool
    orgs: tuple[str, ...]


class HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = dict(headers or {})
        self.body = body


def _repo_not_found(status: int = 404) -> HubError:
    message = "Repository not found" if status == 404 else "Invalid username or password."
    return HubError(status, message, "RepoNotFound")


def _revision_not_found(rev: str) -> HubError:
    return HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")


def _entry_not_found(path: str, commit: str | None = None, message: str | None = None) -> HubError:
    headers = {"X-Repo-Commit": commit} if commit else None
    message = message or f"Entry not found: {path}"
    return HubError(404, message, "EntryNotFound", headers=headers)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(obj: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(
        status, json.dumps(obj).encode(), [("Content-Type", "application/json"), *headers]
    )


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """The YAML front matter of a README.md (``None`` without one). Raises ``yaml.YAMLError``."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            data = yaml.safe_load("\n".join(lines[1:i]))
            return data if isinstance(data, dict) else ({} if data is None else None)
    return None


def _lfs_patterns(gitattributes: bytes | None) -> list[str]:
    if not gitattributes:
        return []
    patterns = []
    for line in gitattributes.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def _matches(path: str, patterns: Iterable[str]) -> bool:
    base = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        if "/" in pattern.rstrip("/"):
            if fnmatch.fnmatchcase(path, pattern.lstrip("/").replace("**/", "*")):
                return True
        elif fnmatch.fnmatchcase(base, pattern.rstrip("/")) or path.startswith(
            pattern.rstrip("/") + "/"
        ):
            return True
    return False


def _is_binary(sample: bytes) -> bool:
    return b"\0" in sample


def _qbool(query: Mapping[str, list[str]], key: str) -> bool:
    values = query.get(key)
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


# ----------------------------------------------------------------------------------------------
# The emulator


class HubEmulator:
    """An in-memory Hub. ``start()`` serves it on ``http://127.0.0.1:<free port>``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lfs: dict[str, bytes] = {}
        self._tokens: dict[str, _TokenInfo] = {
            DEFAULT_TOKEN: _TokenInfo(DEFAULT_USER, True, (DEFAULT_ORG,))
        }
        self._counter = itertools.count()
        self._requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.url = ""
        # Page sizes of the tree listing (the Hub's: 1000, 50 with expand); lower them to test paging.
        self.tree_page_size = TREE_PAGE_SIZE
        self.tree_page_size_expanded = TREE_PAGE_SIZE_EXPANDED
        # Fault mode: while True, every request is read and then never answered (the connection
        # stays open until the emulator stops), like an endpoint behind a stuck proxy.
        self.hanging = False
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> HubEmulator:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"hub-emulator-{port}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # lets hanging handlers go
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, home: str | None = None, token: str | None = DEFAULT_TOKEN) -> dict[str, str]:
        """Environment variables pointing a fresh process (a CLI subprocess) at this emulator."""
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",
            "HF_HUB_ETAG_TIMEOUT": "30",
            "HF_HUB_DOWNLOAD_TIMEOUT": "30",
        }
        if token:
            env["HF_TOKEN"] = token
        if home is not None:
            home = str(home)
            env.update(
                HF_HOME=home,
                HF_HUB_CACHE=f"{home}/hub",
                HF_ASSETS_CACHE=f"{home}/assets",
                HF_XET_CACHE=f"{home}/xet",
                HF_TOKEN_PATH=f"{home}/token",
                HF_DATASETS_CACHE=f"{home}/datasets",
                HF_MODULES_CACHE=f"{home}/modules",
            )
        return env

    # ------------------------------------------------------------------ test helpers

    def add_token(
        self, token: str, user: str, *, write: bool = True, orgs: Iterable[str] = ()
    ) -> None:
        with self._lock:
            self._tokens[token] = _TokenInfo(user, write, tuple(orgs))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request served so far (method, path, query, status; never headers)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count_requests(self, method: str | None = None, path_contains: str = "") -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper()) and path_contains in r.path
        )

    def create_repo(
        self,
        repo_id: str,
        repo_type: str = "dataset",
        *,
        private: bool = False,
        exist_ok: bool = False,
        gitattributes: bool = True,
    ) -> str:
        """Create a repo (initial commit with the Hub's default .gitattributes); return main's sha."""
        with self._lock:
            key = (repo_type, repo_id)
            if key in self._repos:
                if not exist_ok:
                    raise ValueError(f"{repo_type} repo {repo_id} already exists")
                return self._repos[key].branches["main"]
            return self._create_repo(repo_type, repo_id, private, DEFAULT_USER, gitattributes)

    def create_dataset(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str],
        *,
        private: bool = False,
        message: str = "Seed dataset",
    ) -> str:
        """Create the dataset repo if needed and commit ``files`` to main; return the commit sha."""
        return self.commit_files(
            repo_id, files, repo_type="dataset", private=private, message=message
        )

    def create_model(
        self, repo_id: str, files: Mapping[str, bytes | str], *, private: bool = False
    ) -> str:
        return self.commit_files(repo_id, files, repo_type="model", private=private)

    def commit_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str],
        *,
        repo_type: str = "dataset",
        revision: str = "main",
        delete: Iterable[str] = (),
        message: str = "Upload files",
        private: bool = False,
    ) -> str:
        """Commit ``files`` (and deletions) straight into a branch, creating the repo if needed."""
        with self._lock:
            if (repo_type, repo_id) not in self._repos:
                self._create_repo(repo_type, repo_id, private, DEFAULT_USER, True)
            repo = self._repos[(repo_type, repo_id)]
            if revision not in repo.branches:
                raise ValueError(f"no branch {revision!r} in {repo_id}")
            head = repo.commits[repo.branches[revision]]
            tree = dict(head.files)
            for path in delete:
                tree.pop(path, None)
            encoded = {
                _check_path(path): content.encode() if isinstance(content, str) else bytes(content)
                for path, content in files.items()
            }
            if ".gitattributes" in encoded:
                tree[".gitattributes"] = RepoFileData.make(
                    ".gitattributes", encoded[".gitattributes"], False
                )
            probe = Commit("", (), "", "", "", _now(), tree)
            for path, data in encoded.items():
                lfs = self._upload_mode(probe, path, len(data), data[:512]) == "lfs"
                tree[path] = RepoFileData.make(path, data, lfs)
            commit = self._new_commit(repo, (head.oid,), message, "", DEFAULT_USER, tree)
            repo.branches[revision] = commit.oid
            return commit.oid

    def repo_exists(self, repo_id: str, repo_type: str = "dataset") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def is_private(self, repo_id: str, repo_type: str = "dataset") -> bool:
        with self._lock:
            return self._get_repo_for_helper(repo_type, repo_id).private

    def commits(
        self, repo_id: str, repo_type: str = "dataset", revision: str = "main"
    ) -> list[CommitRecord]:
        """The history of ``revision`` (first-parent chain), newest first."""
        with self._lock:
            repo = self._get_repo_for_helper(repo_type, repo_id)
            oid = self._resolve(repo, revision)
            out = []
            while oid is not None:
                c = repo.commits[oid]
                parent = repo.commits[c.parents[0]] if c.parents else None
                out.append(
                    CommitRecord(
                        oid=c.oid, title=c.title, message=c.message, author=c.author,
                        date=c.date, parents=c.parents, files=tuple(sorted(c.files)),
                        changed=tuple(_changed_paths(parent, c)),
                    )
                )  # fmt: skip
                oid = c.parents[0] if c.parents else None
            return out

    def head(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> str:
        with self._lock:
            return self._resolve(self._get_repo_for_helper(repo_type, repo_id), revision)

    def read_file(
        self, repo_id: str, path: str, revision: str | None = None, repo_type: str = "dataset"
    ) -> bytes:
        """The content of ``path`` at ``revision`` (default main); ``KeyError`` when absent."""
        with self._lock:
            repo = self._get_repo_for_helper(repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, revision or "main")]
            if path not in commit.files:
                raise KeyError(f"{path} not in {repo_id}@{revision or 'main'}")
            return commit.files[path].data

    def list_files(
        self, repo_id: str, revision: str | None = None, repo_type: str = "dataset"
    ) -> list[str]:
        with self._lock:
            repo = self._get_repo_for_helper(repo_type, repo_id)
            return sorted(repo.commits[self._resolve(repo, revision or "main")].files)

    def refs(self, repo_id: str, repo_type: str = "dataset") -> dict[str, dict[str, str]]:
        """``{"branches": {name: sha}, "tags": {...}, "pull_requests": {"refs/pr/N": sha}}``."""
        with self._lock:
            repo = self._get_repo_for_helper(repo_type, repo_id)
            return {
                "branches": dict(repo.branches),
                "tags": dict(repo.tags),
                "pull_requests": {f"refs/pr/{n}": oid for n, oid in repo.prs.items()},
            }

    def pull_requests(self, repo_id: str, repo_type: str = "dataset") -> list[PullRequest]:
        with self._lock:
            return list(self._get_repo_for_helper(repo_type, repo_id).pr_info.values())

    def _get_repo_for_helper(self, repo_type: str, repo_id: str) -> Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise KeyError(f"no {repo_type} repo {repo_id!r} on the emulator") from None

    # ------------------------------------------------------------------ internals

    def _create_repo(
        self, repo_type: str, repo_id: str, private: bool, author: str, gitattributes: bool
    ) -> str:
        repo = Repo(
            repo_type=repo_type,
            repo_id=repo_id,
            private=private,
            created_at=_now(),
            uid=hashlib.sha1(f"{repo_type}/{repo_id}/{next(self._counter)}".encode()).hexdigest()[
                :24
            ],
        )
        files = {}
        if gitattributes:
            data = DEFAULT_GITATTRIBUTES.encode()
            files[".gitattributes"] = RepoFileData.make(".gitattributes", data, False)
        commit = self._new_commit(repo, (), "initial commit", "", author, files)
        repo.branches["main"] = commit.oid
        self._repos[(repo_type, repo_id)] = repo
        return commit.oid

    def _new_commit(
        self,
        repo: Repo,
        parents: tuple[str, ...],
        title: str,
        message: str,
        author: str,
        files: Mapping[str, RepoFileData],
    ) -> Commit:
        seed = f"{repo.uid}|{parents}|{title}|{next(self._counter)}|{_now().isoformat()}"
        oid = hashlib.sha1(seed.encode()).hexdigest()
        commit = Commit(oid, parents, title, message, author, _now(), dict(files))
        repo.commits[oid] = commit
        return commit

    def _resolve(self, repo: Repo, rev: str | None) -> str:
        rev = rev or "main"
        if rev in repo.branches:
            return repo.branches[rev]
        if rev.startswith("refs/heads/") and rev[11:] in repo.branches:
            return repo.branches[rev[11:]]
        if rev in repo.tags:
            return repo.tags[rev]
        if rev.startswith("refs/tags/") and rev[10:] in repo.tags:
            return repo.tags[rev[10:]]
        m = re.fullmatch(r"refs/pr/(\d+)", rev)
        if m and int(m.group(1)) in repo.prs:
            return repo.prs[int(m.group(1))]
        if _HEX_RE.fullmatch(rev):
            matches = [oid for oid in repo.commits if oid.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        raise _revision_not_found(rev)

    def _record(self, method: str, raw_path: str, status: int) -> None:
        parts = urlsplit(raw_path)
        record = RecordedRequest(
            method,
            _TOKEN_RE.sub("hf_***", parts.path),
            _TOKEN_RE.sub("hf_***", parts.query),
            status,
        )
        with self._lock:
            self._requests.append(record)

    # ------------------------------------------------------------------ HTTP entry point

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        try:
            response = self._dispatch(method, raw_path, headers, body)
        except HubError as e:
            payload = e.body if e.body is not None else {"error": e.message}
            extra = [("X-Error-Message", e.message), *e.headers.items()]
            if e.error_code:
                extra.append(("X-Error-Code", e.error_code))
            response = _json(payload, e.status, extra)
        except Exception:  # an emulator bug: answer 500 and keep the traceback for the tests
            tb = traceback.format_exc()
            with self._lock:
                self.server_errors.append(tb)
            response = _json({"error": "Internal emulator error"}, 500)
        self._record(method, raw_path, response.status)
        return response

    def _auth(self, headers: Mapping[str, str]) -> _TokenInfo | None:
        value = headers.get("authorization") or headers.get("Authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        info = self._tokens.get(token)
        if info is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return info

    def _dispatch(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        segments = [s for s in parts.path.split("/") if s != ""]
        user = self._auth(headers)
        ctx = _Ctx(method, query, headers, body, user, self)

        if segments[:1] == ["api"]:
            return self._dispatch_api(ctx, segments[1:])
        if segments[:2] == ["_emulator", "lfs"] and len(segments) == 3 and method == "PUT":
            return self._lfs_put(ctx, segments[2])
        # {prefix}{ns}/{name}.git/info/lfs/objects/batch
        repo_type, rest = _split_type_prefix(segments)
        if (
            len(rest) == 6
            and rest[1].endswith(".git")
            and rest[2:] == ["info", "lfs", "objects", "batch"]
        ):
            return self._lfs_batch(ctx, repo_type, f"{rest[0]}/{rest[1][:-4]}")
        # {prefix}{ns}/{name}/resolve/{rev}/{path}
        if len(rest) >= 5 and rest[2] in ("resolve", "raw") and method in ("GET", "HEAD"):
            rev, path_segments = _split_revision(rest[3:])
            return self._resolve_file(ctx, repo_type, f"{rest[0]}/{rest[1]}", rev, path_segments)
        raise HubError(404, f"Not found: {method} {parts.path}")

    def _dispatch_api(self, ctx: _Ctx, seg: list[str]) -> Response:
        method = ctx.method
        if seg == ["whoami-v2"] and method == "GET":
            return self._whoami(ctx)
        if seg == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(ctx)
        if seg == ["repos", "create"] and method == "POST":
            return self._api_create_repo(ctx)
        if seg == ["repos", "delete"] and method == "DELETE":
            return self._api_delete_repo(ctx)
        if seg[:1] == ["telemetry"]:
            return _json({})
        if not seg or seg[0] not in _TYPE_FROM_PLURAL:
            raise HubError(404, f"Not found: /api/{'/'.join(seg)}")
        repo_type = _TYPE_FROM_PLURAL[seg[0]]
        if len(seg) == 1 and method == "GET":
            return self._list_repos(ctx, repo_type)
        if len(seg) < 3:
            raise HubError(404, "Not found")
        repo_id = f"{unquote(seg[1])}/{unquote(seg[2])}"
        rest = seg[3:]
        if not rest and method == "GET":
            return self._repo_info(ctx, repo_type, repo_id, None)
        action = rest[0] if rest else ""
        args = rest[1:]
        if action == "revision" and args and method == "GET":
            rev, _ = _split_revision(args)
            return self._repo_info(ctx, repo_type, repo_id, rev)
        if action in ("tree", "paths-info", "commits", "preupload", "commit", "resolve"):
            rev, path_segments = _split_revision(args) if args else ("main", [])
            path = unquote("/".join(path_segments))
            if action == "tree" and method == "GET":
                return self._tree(ctx, repo_type, repo_id, rev, path)
            if action == "paths-info" and method == "POST":
                return self._paths_info(ctx, repo_type, repo_id, rev)
            if action == "commits" and method == "GET":
                return self._list_commits(ctx, repo_type, repo_id, rev)
            if action == "preupload" and method == "POST":
                return self._preupload(ctx, repo_type, repo_id, rev)
            if action == "commit" and method == "POST":
                return self._commit(ctx, repo_type, repo_id, rev)
            if action == "resolve" and method in ("GET", "HEAD"):
                return self._resolve_file(ctx, repo_type, repo_id, rev, path_segments)
        if action == "auth-check" and method == "GET":
            return self._auth_check(ctx, repo_type, repo_id, write=args == ["write"])
        if action == "refs" and method == "GET":
            return self._refs(ctx, repo_type, repo_id)
        if action == "branch" and args and method in ("POST", "DELETE"):
            return self._branch(ctx, repo_type, repo_id, unquote("/".join(args)))
        if action == "tag" and args and method in ("POST", "DELETE"):
            return self._tag(ctx, repo_type, repo_id, unquote("/".join(args)))
        if action == "settings" and method == "PUT":
            return self._settings(ctx, repo_type, repo_id)
        # e.g. /api/datasets/{repo}/parquet: no dataset viewer here, as for a repo without export
        self._read_repo(ctx, repo_type, repo_id)
        raise HubError(404, f"Not found: {method} /api/{'/'.join(seg)}")

    # ------------------------------------------------------------------ access helpers

    def _read_repo(self, ctx: _Ctx, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _repo_not_found(404 if ctx.user else 401)
        if repo.private and ctx.user is None:
            raise _repo_not_found(401)
        return repo

    def _write_repo(self, ctx: _Ctx, repo_type: str, repo_id: str) -> Repo:
        if ctx.user is None:
            raise HubError(401, "You must be authenticated to write to a repository.")
        repo = self._read_repo(ctx, repo_type, repo_id)
        if not ctx.user.write:
            raise HubError(
                403, "You don't have the rights to write to this repository (read token)."
            )
        if repo_id.split("/")[0] not in (ctx.user.user, *ctx.user.orgs):
            raise HubError(403, "You don't have the rights to write to this repository.")
        return repo

    def _base(self) -> str:
        return self.url

    # ------------------------------------------------------------------ /api handlers

    def _whoami(self, ctx: _Ctx) -> Response:
        if ctx.user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        u = ctx.user
        return _json(
            {
                "type": "user",
                "id": hashlib.sha1(u.user.encode()).hexdigest()[:24],
                "name": u.user,
                "fullname": u.user.replace("-", " ").title(),
                "email": f"{u.user}@example.invalid",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "avatarUrl": "",
                "periodEnd": None,
                "orgs": [
                    {"type": "org", "name": org, "fullname": org, "roleInOrg": "admin",
                     "isEnterprise": False, "avatarUrl": ""}
                    for org in u.orgs
                ],
                "auth": {
                    "type": "access_token",
                    "accessToken": {
                        "displayName": "emulator-token",
                        "role": "write" if u.write else "read",
                        "createdAt": "2024-01-01T00:00:00.000Z",
                    },
                },
            }
        )  # fmt: skip

    def _auth_check(self, ctx: _Ctx, repo_type: str, repo_id: str, write: bool) -> Response:
        """GET /api/{type}s/{repo}/auth-check[/write] (HfApi.auth_check): 200 when the token may
        read (write) the repo; 401 without a valid token on a private or missing repo; 404 when
        the repo does not exist for this token; 403 when it may read but not write."""
        if write:
            self._write_repo(ctx, repo_type, repo_id)
        else:
            self._read_repo(ctx, repo_type, repo_id)
        return _json({})

    def _validate_yaml(self, ctx: _Ctx) -> Response:
        payload = ctx.json()
        content = payload.get("content", "")
        try:
            data = parse_front_matter(content)
        except yaml.YAMLError as e:
            msg = f"Invalid YAML in README.md metadata: {e}"
            raise HubError(400, msg, body={"errors": [{"message": msg}], "warnings": []}) from None
        if data is None and content.lstrip().startswith("---"):
            msg = "README.md metadata must be a YAML mapping"
            raise HubError(400, msg, body={"errors": [{"message": msg}], "warnings": []})
        if ctx.headers.get("accept", "").startswith("text/plain"):
            return Response(200, b"OK", [("Content-Type", "text/plain")])
        return _json({"errors": [], "warnings": []})

    def _api_create_repo(self, ctx: _Ctx) -> Response:
        if ctx.user is None:
            raise HubError(401, "You must be authenticated to create a repository.")
        if not ctx.user.write:
            raise HubError(403, "You don't have the rights to create a repository (read token).")
        payload = ctx.json()
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        name = payload.get("name")
        if not name or "/" in name:
            raise HubError(400, f"Invalid repo name {name!r}")
        namespace = payload.get("organization") or ctx.user.user
        if namespace not in (ctx.user.user, *ctx.user.orgs):
            raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace \"{namespace}\".")
        repo_id = f"{namespace}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        url = f"{self._base()}/{_URL_PREFIX[repo_type]}{repo_id}"
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                msg = f"You already created this {repo_type} repo"
                raise HubError(409, msg, body={"error": msg, "url": url})
            self._create_repo(repo_type, repo_id, private, ctx.user.user, True)
            uid = self._repos[(repo_type, repo_id)].uid
        return _json({"url": url, "name": repo_id, "id": uid})

    def _api_delete_repo(self, ctx: _Ctx) -> Response:
        payload = ctx.json()
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or (ctx.user.user if ctx.user else "")
        repo_id = f"{namespace}/{payload.get('name')}"
        with self._lock:
            self._write_repo(ctx, repo_type, repo_id)
            del self._repos[(repo_type, repo_id)]
        return Response(200, b"", [("Content-Type", "text/plain")])

    def _settings(self, ctx: _Ctx, repo_type: str, repo_id: str) -> Response:
        payload = ctx.json()
        with self._lock:
            repo = self._write_repo(ctx, repo_type, repo_id)
            if "visibility" in payload:
                repo.private = payload["visibility"] == "private"
            if "private" in payload:
                repo.private = bool(payload["private"])
            if "gated" in payload:
                repo.gated = payload["gated"]
        return _json({})

    def _list_repos(self, ctx: _Ctx, repo_type: str) -> Response:
        author = (ctx.query.get("author") or [None])[-1]
        search = (ctx.query.get("search") or [None])[-1]
        with self._lock:
            out = []
            for (t, repo_id), repo in sorted(self._repos.items()):
                if t != repo_type or (repo.private and ctx.user is None):
                    continue
                if author and repo.author != author:
                    continue
                if search and search.lower() not in repo_id.lower():
                    continue
                head = repo.commits[repo.branches["main"]] if "main" in repo.branches else None
                out.append(
                    {
                        "_id": repo.uid, "id": repo_id, "author": repo.author,
                        "private": repo.private, "sha": head.oid if head else None,
                        "lastModified": _iso(head.date if head else repo.created_at),
                        "createdAt": _iso(repo.created_at), "downloads": 0, "likes": 0,
                        "tags": [], "gated": repo.gated, "disabled": False,
                        **({"modelId": repo_id} if repo_type == "model" else {}),
                    }
                )  # fmt: skip
        return _json(out)

    def _repo_info(self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str | None) -> Response:
        with self._lock:
            repo = self._read_repo(ctx, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, rev)]
            blobs = _qbool(ctx.query, "blobs")
            siblings = []
            for path in sorted(commit.files):
                f = commit.files[path]
                sibling: dict[str, Any] = {"rfilename": path}
                if blobs:
                    sibling.update(size=f.size, blobId=f.blob_id)
                    if f.lfs:
                        info = f.lfs_info()
                        sibling["lfs"] = {"sha256": f.sha256, "size": f.size,
                                          "pointerSize": info["pointerSize"]}  # fmt: skip
                siblings.append(sibling)
            card_data = None
            if "README.md" in commit.files:
                with contextlib.suppress(yaml.YAMLError, UnicodeDecodeError):
                    card_data = parse_front_matter(commit.files["README.md"].data.decode())
            info: dict[str, Any] = {
                "_id": repo.uid,
                "id": repo_id,
                "author": repo.author,
                "sha": commit.oid,
                "lastModified": _iso(commit.date),
                "createdAt": _iso(repo.created_at),
                "private": repo.private,
                "gated": repo.gated,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": list((card_data or {}).get("tags") or [])
                if isinstance((card_data or {}).get("tags"), list)
                else [],
                "siblings": siblings,
                "usedStorage": sum(f.size for f in commit.files.values()),
            }
            if card_data is not None:
                info["cardData"] = card_data
            if repo_type == "model":
                info["modelId"] = repo_id
                if card_data and isinstance(card_data.get("library_name"), str):
                    info["library_name"] = card_data["library_name"]
            if repo_type == "dataset":
                info["description"] = None
            if repo_type == "space":
                info["sdk"] = (card_data or {}).get("sdk", "static")
            return _json(info)

    # -- tree / paths-info / refs / commits

    def _file_json(self, repo: Repo, commit: Commit, f: RepoFileData, expand: bool) -> dict:
        out: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
        if f.lfs:
            out["lfs"] = f.lfs_info()
        if expand:
            out["lastCommit"] = self._last_commit_json(repo, commit, f.path, is_dir=False)
            out["securityFileStatus"] = {"status": "safe", "avScan": {"virusFound": False},
                                         "pickleImportScan": None}  # fmt: skip
        return out

    def _dir_json(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        digest = hashlib.sha1()
        for p in sorted(commit.files):
            if p.startswith(path + "/"):
                digest.update(f"{p}\0{commit.files[p].blob_id}\n".encode())
        out: dict[str, Any] = {
            "type": "directory",
            "oid": digest.hexdigest(),
            "size": 0,
            "path": path,
        }
        if expand:
            out["lastCommit"] = self._last_commit_json(repo, commit, path, is_dir=True)
        return out

    def _last_commit_json(self, repo: Repo, commit: Commit, path: str, is_dir: bool) -> dict:
        def state(c: Commit) -> Any:
            if not is_dir:
                f = c.files.get(path)
                return f.blob_id if f else None
            return tuple(
                sorted((p, f.blob_id) for p, f in c.files.items() if p.startswith(path + "/"))
            )

        current, here = commit, state(commit)
        while current.parents:
            parent = repo.commits[current.parents[0]]
            if state(parent) != here:
                break
            current = parent
        return {"id": current.oid, "title": current.title, "date": _iso(current.date)}

    def _tree(self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str, path: str) -> Response:
        recursive = _qbool(ctx.query, "recursive")
        expand = _qbool(ctx.query, "expand")
        limit = self.tree_page_size_expanded if expand else self.tree_page_size
        if ctx.query.get("limit"):
            limit = max(1, int(ctx.query["limit"][-1]))
        cursor = int((ctx.query.get("cursor") or ["0"])[-1] or 0)
        path = path.strip("/")
        with self._lock:
            repo = self._read_repo(ctx, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, rev)]
            dirs: set[str] = set()
            files: list[RepoFileData] = []
            for p, f in commit.files.items():
                if path and not p.startswith(path + "/"):
                    continue
                rel = p[len(path) + 1 :] if path else p
                parts = rel.split("/")
                base = [path] if path else []
                if recursive:
                    files.append(f)
                    for i in range(1, len(parts)):
                        dirs.add("/".join(base + parts[:i]))
                elif len(parts) == 1:
                    files.append(f)
                else:
                    dirs.add("/".join(base + parts[:1]))
            if path and not files and not dirs:
                raise _entry_not_found(path, commit.oid)
            entries = sorted(
                [(d, "d") for d in dirs] + [(f.path, "f") for f in files], key=lambda e: e[0]
            )
            page = entries[cursor : cursor + limit]
            out = [
                self._dir_json(repo, commit, p, expand)
                if kind == "d"
                else self._file_json(repo, commit, commit.files[p], expand)
                for p, kind in page
            ]
        headers = []
        if cursor + limit < len(entries):
            params = {"recursive": str(recursive).lower(), "expand": str(expand).lower(),
                      "limit": str(limit), "cursor": str(cursor + limit)}  # fmt: skip
            query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
            encoded = "/" + quote(path, safe="") if path else ""
            next_url = f"{self._base()}/api/{repo_type}s/{repo_id}/tree/{quote(rev, safe='')}{encoded}?{query}"
            headers.append(("Link", f'<{next_url}>; rel="next"'))
        return _json(out, headers=headers)

    def _paths_info(self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str) -> Response:
        content_type = ctx.headers.get("content-type", "")
        if "json" in content_type:
            payload = ctx.json()
            paths = payload.get("paths") or []
            paths = [paths] if isinstance(paths, str) else paths
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(ctx.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = _qbool(form, "expand")
        with self._lock:
            repo = self._read_repo(ctx, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, rev)]
            out = []
            for raw in paths:
                p = raw.strip("/")
                if p in commit.files:
                    out.append(self._file_json(repo, commit, commit.files[p], expand))
                elif p and any(q.startswith(p + "/") for q in commit.files):
                    out.append(self._dir_json(repo, commit, p, expand))
        return _json(out)

    def _refs(self, ctx: _Ctx, repo_type: str, repo_id: str) -> Response:
        with self._lock:
            repo = self._read_repo(ctx, repo_type, repo_id)
            out: dict[str, Any] = {
                "branches": [
                    {"name": n, "ref": f"refs/heads/{n}", "targetCommit": o}
                    for n, o in sorted(repo.branches.items())
                ],
                "converts": [],
                "tags": [
                    {"name": n, "ref": f"refs/tags/{n}", "targetCommit": o}
                    for n, o in sorted(repo.tags.items())
                ],
            }
            if _qbool(ctx.query, "include_prs"):
                out["pullRequests"] = [
                    {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": o}
                    for n, o in sorted(repo.prs.items())
                ]
        return _json(out)

    def _list_commits(self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str) -> Response:
        with self._lock:
            repo = self._read_repo(ctx, repo_type, repo_id)
            oid: str | None = self._resolve(repo, rev)
            out = []
            while oid is not None:
                c = repo.commits[oid]
                out.append(
                    {
                        "id": c.oid,
                        "title": c.title,
                        "message": c.message,
                        "date": _iso(c.date),
                        "authors": [{"user": c.author, "avatar": ""}],
                        "parents": list(c.parents),
                        "formatted": {"title": c.title, "message": c.message},
                    }
                )
                oid = c.parents[0] if c.parents else None
        return _json(out)

    def _branch(self, ctx: _Ctx, repo_type: str, repo_id: str, branch: str) -> Response:
        with self._lock:
            repo = self._write_repo(ctx, repo_type, repo_id)
            if ctx.method == "DELETE":
                if branch not in repo.branches:
                    raise _revision_not_found(branch)
                if branch == "main":
                    raise HubError(403, "Cannot delete the default branch")
                del repo.branches[branch]
                return _json({})
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            payload = ctx.json() if ctx.body else {}
            start = payload.get("startingPoint") or "main"
            if payload.get("emptyBranch"):
                commit = self._new_commit(repo, (), "empty branch", "", ctx.user.user, {})
                repo.branches[branch] = commit.oid
            else:
                repo.branches[branch] = self._resolve(repo, start)
        return _json({})

    def _tag(self, ctx: _Ctx, repo_type: str, repo_id: str, arg: str) -> Response:
        with self._lock:
            repo = self._write_repo(ctx, repo_type, repo_id)
            if ctx.method == "DELETE":
                if arg not in repo.tags:
                    raise _revision_not_found(arg)
                del repo.tags[arg]
                return _json({})
            payload = ctx.json()
            tag = payload.get("tag")
            if not tag:
                raise HubError(400, "Missing tag name")
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = self._resolve(repo, arg)
        return _json({})

    # -- uploads

    def _upload_mode(self, commit: Commit | None, path: str, size: int, sample: bytes) -> str:
        attrs = commit.files.get(".gitattributes") if commit else None
        patterns = _lfs_patterns(attrs.data if attrs else None)
        if _matches(path, patterns) or size > LFS_SIZE_THRESHOLD or _is_binary(sample):
            return "lfs"
        return "regular"

    def _preupload(self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str) -> Response:
        payload = ctx.json()
        gitignore = [
            line.strip()
            for line in (payload.get("gitIgnore") or "").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        with self._lock:
            repo = self._write_repo(ctx, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, rev)]
            files_out = []
            for item in payload.get("files", []):
                path = item["path"]
                sample = base64.b64decode(item.get("sample") or "")
                mode = self._upload_mode(commit, path, int(item.get("size", 0)), sample)
                entry: dict[str, Any] = {
                    "path": path,
                    "uploadMode": mode,
                    "shouldIgnore": bool(gitignore) and _matches(path, gitignore),
                }
                existing = commit.files.get(path)
                if existing is not None:
                    entry["oid"] = existing.sha256 if mode == "lfs" else git_blob_oid(existing.data)
                files_out.append(entry)
        return _json({"files": files_out, "commitOid": commit.oid})

    def _lfs_batch(self, ctx: _Ctx, repo_type: str, repo_id: str) -> Response:
        payload = ctx.json()
        with self._lock:
            if payload.get("operation", "upload") == "upload":
                self._write_repo(ctx, repo_type, repo_id)
            else:
                self._read_repo(ctx, repo_type, repo_id)
            objects = []
            for obj in payload.get("objects", []):
                oid, size = str(obj.get("oid")), int(obj.get("size", 0))
                entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
                if not re.fullmatch(r"[0-9a-f]{64}", oid):
                    entry["error"] = {"code": 422, "message": "Invalid oid"}
                elif payload.get("operation", "upload") == "upload":
                    if oid not in self._lfs:
                        href = f"{self._base()}/_emulator/lfs/{oid}"
                        entry["actions"] = {
                            "upload": {"href": href, "header": {}, "expires_in": 3600}
                        }
                elif oid in self._lfs:
                    href = f"{self._base()}/_emulator/lfs/{oid}"
                    entry["actions"] = {"download": {"href": href, "header": {}}}
                else:
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
                objects.append(entry)
        body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})
        return Response(200, body.encode(), [("Content-Type", "application/vnd.git-lfs+json")])

    def _lfs_put(self, ctx: _Ctx, oid: str) -> Response:
        if hashlib.sha256(ctx.body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match its sha256")
        with self._lock:
            self._lfs[oid] = ctx.body
        return Response(200, b"", [("Content-Type", "text/plain")])

    def _commit(self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str) -> Response:
        lines = [json.loads(line) for line in ctx.body.decode().splitlines() if line.strip()]
        if lines and "key" not in lines[0]:
            raise HubError(400, "Only the NDJSON commit payload is emulated")
        header = next((item["value"] for item in lines if item["key"] == "header"), None)
        if header is None or not header.get("summary"):
            raise HubError(400, "Missing commit header/summary")
        create_pr = _qbool(ctx.query, "create_pr")
        with self._lock:
            repo = self._write_repo(ctx, repo_type, repo_id)
            head_oid = self._resolve(repo, rev)
            parent_commit = header.get("parentCommit")
            is_branch = rev in repo.branches or re.fullmatch(r"refs/pr/\d+", rev)
            if create_pr:
                base_oid = self._resolve(repo, parent_commit) if parent_commit else head_oid
            else:
                if not is_branch:
                    raise HubError(400, f"Cannot commit to {rev}: not a branch")
                if parent_commit and not head_oid.startswith(parent_commit):
                    raise HubError(
                        412,
                        "A commit has happened since. Please refresh and try again.",
                    )
                base_oid = head_oid
            base = repo.commits[base_oid]
            tree = dict(base.files)
            for item in lines:
                key, value = item["key"], item.get("value", {})
                path = _check_path(value.get("path", ""))
                if key == "file":
                    content = value.get("content", "")
                    if value.get("encoding", "base64") == "base64":
                        data = base64.b64decode(content)
                    else:
                        data = content.encode()
                    tree[path] = RepoFileData.make(path, data, False)
                elif key == "lfsFile":
                    oid = value.get("oid", "")
                    data = self._lfs.get(oid)
                    if data is None:
                        data = next(
                            (f.data for c in repo.commits.values() for f in c.files.values()
                             if f.lfs and f.sha256 == oid),
                            None,
                        )  # fmt: skip
                    if data is None:
                        raise HubError(422, f"LFS object {oid} for {path} was never uploaded")
                    tree[path] = RepoFileData.make(path, data, True)
                elif key == "deletedFile":
                    if path not in tree:
                        raise _entry_not_found(
                            path, message=f"A file with this name doesn't exist: {path}"
                        )
                    del tree[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    doomed = [p for p in tree if p.startswith(prefix)]
                    if not doomed:
                        raise _entry_not_found(
                            path, message=f"A folder with this name doesn't exist: {path}"
                        )
                    for p in doomed:
                        del tree[p]
                elif key != "header":
                    raise HubError(400, f"Unknown commit operation {key!r}")
            commit = self._new_commit(
                repo,
                (base.oid,),
                header["summary"],
                header.get("description") or "",
                ctx.user.user,
                tree,
            )
            out: dict[str, Any] = {"success": True, "commitOid": commit.oid, "hookOutput": ""}
            out["commitUrl"] = f"{self._base()}/{repo.url_path}/commit/{commit.oid}"
            if create_pr:
                num = repo.next_discussion
                repo.next_discussion += 1
                repo.prs[num] = commit.oid
                base_branch = rev if rev in repo.branches else "main"
                repo.pr_info[num] = PullRequest(
                    num, header["summary"], ctx.user.user, base_branch, _now()
                )
                out["pullRequestUrl"] = f"{self._base()}/{repo.url_path}/discussions/{num}"
            elif rev.startswith("refs/pr/"):
                repo.prs[int(rev.rsplit("/", 1)[1])] = commit.oid
            else:
                repo.branches[rev] = commit.oid
        return _json(out)

    # -- downloads

    def _resolve_file(
        self, ctx: _Ctx, repo_type: str, repo_id: str, rev: str, path_segments: list[str]
    ) -> Response:
        path = unquote("/".join(path_segments))
        with self._lock:
            repo = self._read_repo(ctx, repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, rev)]
            f = commit.files.get(path)
        if f is None:
            raise _entry_not_found(path, commit.oid)
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("ETag", f'"{f.etag}"'),
            ("X-Repo-Commit", commit.oid),
            ("Accept-Ranges", "bytes"),
            ("Content-Disposition", f'inline; filename="{path.rsplit("/", 1)[-1]}"'),
        ]
        if f.lfs:
            headers += [("X-Linked-Etag", f'"{f.sha256}"'), ("X-Linked-Size", str(f.size))]
        data = f.data
        range_header = ctx.headers.get("range") or ctx.headers.get("Range")
        if range_header and ctx.method == "GET":
            span = _parse_range(range_header, len(data))
            if span is None:
                return Response(416, b"", headers + [("Content-Range", f"bytes */{len(data)}")])
            start, end = span
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
            return Response(206, data[start : end + 1], headers)
        return Response(200, data, headers)


def _changed_paths(parent: Commit | None, commit: Commit) -> list[str]:
    before = parent.files if parent else {}
    paths = set(before) | set(commit.files)
    return sorted(
        p
        for p in paths
        if (before.get(p).blob_id if p in before else None)
        != (commit.files.get(p).blob_id if p in commit.files else None)
    )


def _check_path(path: str) -> str:
    path = path.lstrip("/")
    if any(part in ("..", ".") for part in path.split("/")) or path.startswith(".git/"):
        raise HubError(400, f"Invalid path {path!r}")
    return path


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix range
        length = int(m.group(2))
        if length == 0:
            return None
        return max(size - length, 0), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def _split_type_prefix(segments: list[str]) -> tuple[str, list[str]]:
    if segments and segments[0] in ("datasets", "spaces", "models"):
        return _TYPE_FROM_PLURAL[segments[0]], segments[1:]
    return "model", segments


def _split_revision(segments: list[str]) -> tuple[str, list[str]]:
    """Split ``[rev, *path]``; a revision is one (percent-encoded) segment, except the special
    ``refs/pr/N``, ``refs/convert/x``, ``refs/heads/x`` and ``refs/tags/x`` left unencoded."""
    if len(segments) >= 3 and segments[0] == "refs" and segments[1] in (
        "pr", "convert", "heads", "tags",
    ):  # fmt: skip
        return "/".join(segments[:3]), segments[3:]
    return unquote(segments[0]), segments[1:]


@dataclass
class _Ctx:
    method: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    user: _TokenInfo | None
    emulator: HubEmulator

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise HubError(400, "Invalid JSON body") from None
        if not isinstance(data, dict):
            raise HubError(400, "Expected a JSON object")
        return data


# ----------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    emulator: HubEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping its connection is normal; anything else is kept for the tests.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            with self.emulator._lock:
                self.emulator.server_errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubEmulator/1.0"
    timeout = 60  # idle keep-alive connections are dropped after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.emulator._lock:
            self.server.emulator._connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.emulator._lock:
            self.server.emulator._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, no tokens
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        if self.server.emulator.hanging:
            self.server.emulator._record(self.command, self.path, 0)
            self.server.emulator._stopping.wait()
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.emulator.handle(self.command, self.path, headers, body)
        self.send_response(response.status)
        for key, value in response.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve
