"""The package as a new user gets it: the built wheel, installed in a fresh venv outside the repo.

setup.cfg maps the design card's top-level folders (templates/, static/, config/) into the
package; these tests check that the wheel carries them and that gunicorn run from another
directory serves the page, its stylesheet and scripts, the API and the error page.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chatapp.settings import PACKAGE_ROOT, PROJECT_ROOT
from tests.servers import NO_CONTROL_SOCKET, AppServer, RedisServer, free_port

DATA_FOLDERS = {"chatapp.templates": "templates", "chatapp.static": "static", "chatapp.config": "config"}
API_KEY = "package-test-operator-key"


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PROJECT_ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def test_setup_cfg_lists_every_code_package_and_maps_the_data_folders():
    options = _setup_cfg()["options"]
    listed = set(options["packages"].split())
    mapped = dict((part.strip() for part in line.split("=", 1)) for line in options["package_dir"].strip().splitlines())
    code = {".".join(p.parent.relative_to(PROJECT_ROOT).parts) for p in PACKAGE_ROOT.rglob("__init__.py")}

    assert code - listed == set(), "add these to [options] packages in setup.cfg, or the wheel leaves them out"
    assert listed - code == set(DATA_FOLDERS) and mapped == DATA_FOLDERS


def test_the_data_folders_live_only_at_the_top_of_the_repo():
    """Mapped, not copied: an editable install must not make chatapp/templates (and friends)."""
    for folder in DATA_FOLDERS.values():
        assert (PROJECT_ROOT / folder).is_dir()
        assert not (PACKAGE_ROOT / folder).exists(), f"chatapp/{folder} duplicates the top-level {folder}/"


# --- the wheel in a fresh venv -------------------------------------------------------------------


def _run(cmd: list[str | Path], what: str, timeout: float, **kwargs) -> str:
    done = subprocess.run(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{output[-4000:]}"
    return output


def _clean_env(**extra: str | None) -> dict[str, str | None]:
    """os.environ minus anything that could point the installed app back at this repo."""
    env: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("CHATAPP_", "GUNICORN_", "PYTHON", "FLASK_"))
    }
    env.update({"VIRTUAL_ENV": None, "XDG_RUNTIME_DIR": None})
    env.update(extra)
    return env


def _merged(env: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in {**os.environ, **env}.items() if v is not None}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`python -m build` on the repo: the sdist, then the wheel built from that sdist."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", dist, PROJECT_ROOT], "python -m build", 300)
    wheels = list(dist.glob("chatapp-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    return wheels[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """An empty directory outside the repo: the installed app's working directory and $HOME."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel, workdir) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies from the index."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", venv], "python -m venv", 120)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--no-input", "--no-compile", "--disable-pip-version-check"]
    _run([*pip, wheel], "pip install <wheel>", 600, env=_merged(_clean_env()))
    where = _run(
        [venv / "bin" / "python", "-c", "import chatapp.settings as s; print(s.PACKAGE_ROOT, s.data_path('static'))"],
        "import chatapp",
        60,
        cwd=workdir,
        env=_merged(_clean_env()),
    )
    package_root, static = where.split()[:2]
    assert Path(package_root).is_relative_to(venv), f"the venv imports chatapp from {package_root}"
    assert static == f"{package_root}/static", f"chatapp/static is not in the wheel: the app would read {static}"
    return venv


@pytest.fixture(scope="module")
def installed_app(venv, workdir, redis_server: RedisServer, tmp_path_factory) -> Iterator[AppServer]:
    port = free_port()
    env = _clean_env(
        CHATAPP_ENV="production",
        CHATAPP_REDIS_URL=redis_server.url,
        CHATAPP_SECRET_KEY=secrets.token_urlsafe(32),
        CHATAPP_API_KEYS=API_KEY,
        HOME=str(workdir),
    )
    cmd = [venv / "bin" / "gunicorn", "-b", f"127.0.0.1:{port}", NO_CONTROL_SOCKET, "chatapp:create_app()"]
    log = tmp_path_factory.mktemp("installed-gunicorn") / "gunicorn.log"
    with AppServer(cmd, port, env=env, cwd=workdir, log_path=log, timeout=30) as server:
        yield server


class Answer:
    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status, self.content_type, self.body = status, content_type, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> dict:
        assert self.content_type.startswith("application/json"), (self.content_type, self.text[:500])
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.content_type} {self.text[:300]!r}>"


def fetch(server: AppServer, method: str, path: str, body: dict | None = None, **headers: str) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.base_url}{path}", data=data, method=method)  # noqa: S310
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return Answer(response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.headers.get("Content-Type", ""), exc.read())


def api(server: AppServer, method: str, path: str, body: dict | None = None) -> Answer:
    return fetch(server, method, path, body, Authorization=f"Bearer {API_KEY}", Accept="application/json")


class PageParser(HTMLParser):
    """The page's stylesheets, scripts and button labels."""

    def __init__(self) -> None:
        super().__init__()
        self.stylesheets: list[str] = []
        self.scripts: list[str] = []
        self.buttons: list[str] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "link" and attr.get("href") and "stylesheet" in (attr.get("rel") or "").split():
            self.stylesheets.append(attr["href"] or "")
        elif tag == "link" and attr.get("href") and "modulepreload" in (attr.get("rel") or "").split():
            self.scripts.append(attr["href"] or "")
        elif tag == "script" and attr.get("src"):
            self.scripts.append(attr["src"] or "")
        elif tag == "button":
            self._button = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            self.buttons.append(" ".join("".join(self._button).split()))
            self._button = None


# import ... from "./x.js", import "./x.js", export ... from "./x.js", import("./x.js")
JS_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']""")


def _same_origin(url: str) -> bool:
    return not urllib.parse.urlsplit(url).netloc and not url.startswith("data:")


def _repo_file(url_path: str) -> Path | None:
    """The file in this repo that a /static/... URL should serve."""
    path = urllib.parse.urlsplit(url_path).path
    if not path.startswith("/static/"):
        return None
    return PROJECT_ROOT / "static" / urllib.parse.unquote(path.removeprefix("/static/"))


def _assert_served_as_in_the_repo(server: AppServer, url: str, kind: str) -> Answer:
    answer = fetch(server, "GET", url)
    assert answer.status == 200, f"{url}: {answer!r}"
    assert kind in answer.content_type, f"{url} is served as {answer.content_type!r}, not {kind}"
    source = _repo_file(url)
    if source is not None:
        assert answer.body == source.read_bytes(), f"{url} does not serve {source.relative_to(PROJECT_ROOT)}"
    return answer


@pytest.mark.redis
def test_the_installed_app_serves_the_page_with_its_stylesheet_and_scripts(installed_app):
    page = fetch(installed_app, "GET", "/", Accept="text/html")

    assert page.status == 200 and page.content_type.startswith("text/html"), page
    parser = PageParser()
    parser.feed(page.text)
    assert "<title>" in page.text and "chatapp" in page.text
    assert any(label.endswith("New") for label in parser.buttons), parser.buttons
    assert any(label.endswith("Sessions") for label in parser.buttons), parser.buttons
    assert parser.stylesheets and parser.scripts, (parser.stylesheets, parser.scripts)

    for href in parser.stylesheets:
        if _same_origin(href):
            _assert_served_as_in_the_repo(installed_app, urllib.parse.urljoin("/", href), "text/css")
    # every script, and every module those scripts import, as a browser would load them
    queue = [urllib.parse.urljoin("/", src) for src in parser.scripts if _same_origin(src)]
    seen: set[str] = set()
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        script = _assert_served_as_in_the_repo(installed_app, url, "javascript")
        queue += [urllib.parse.urljoin(url, spec) for spec in JS_IMPORT.findall(script.text) if spec[0] in "./"]
    assert seen


@pytest.mark.redis
def test_the_installed_app_reports_its_health(installed_app):
    health = api(installed_app, "GET", "/health")  # the details are for operators

    assert health.status == 200, health
    assert (health.json()["status"], health.json()["redis"]) == ("ok", "ok")


@pytest.mark.redis
def test_the_installed_app_answers_the_guides_api(installed_app):
    user = f"pkg-{secrets.token_hex(4)}"

    created = api(installed_app, "POST", "/api/session/create", {"user_id": user, "persona": "mental_health_nurse"})
    assert created.status == 201, created
    session_id = created.json()["session_id"]
    assert created.json()["persona"] == "mental_health_nurse"  # from the installed personas.yaml
    sent = api(installed_app, "POST", f"/api/sessions/{session_id}/messages", {"content": "Hello from a wheel"})
    assert sent.status == 201, sent

    listed = api(installed_app, "GET", f"/api/sessions?user_id={user}")
    assert listed.status == 200, listed
    assert [s["session_id"] for s in listed.json()["sessions"]] == [session_id]

    history = api(installed_app, "GET", f"/api/session/{user}/history")
    assert history.status == 200, history
    assert history.json()["user_id"] == user
    assert [m["role"] for m in history.json()["messages"]] == ["user", "assistant"]
    assert history.json()["messages"][0]["content"] == "Hello from a wheel"

    cleared = api(installed_app, "DELETE", f"/api/session/{user}/clear")
    assert cleared.status == 200, cleared
    assert cleared.json()["status"] == "success"
    assert api(installed_app, "GET", f"/api/session/{user}/history").json()["messages"] == []


@pytest.mark.redis
def test_the_installed_app_renders_its_error_page(installed_app):
    missing = fetch(installed_app, "GET", "/no-such-page", Accept="text/html")

    assert missing.status == 404, missing
    # the plain-text fallback (error.html not found) would be text/plain
    assert missing.content_type.startswith("text/html"), missing
    assert "<html" in missing.text.lower() and "404 Not Found" in missing.text


@pytest.mark.redis
def test_the_installed_app_leaves_no_shared_control_socket(installed_app, workdir):
    assert fetch(installed_app, "GET", "/health").status == 200
    assert not (workdir / ".gunicorn").exists()
