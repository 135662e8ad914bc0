"""Issue 16: search across a visitor's conversations, every test on both engines.

Each test runs on Debian's redis-server (the built-in index) and on a Redis Stack server
(the Redis Query Engine, FT.*), where the app picks that engine by itself at start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from chatapp.storage import get_store
from chatapp.storage.lua import BUILT_IN, QUERY_ENGINE, _expand
from chatapp.storage.search_engine import INDEX
from chatapp.storage.search_text import words
from tests.helpers import OPERATOR_KEY, Api, AppFactory, Visitor
from tests.servers import RedisServer

pytestmark = pytest.mark.redis
ENGINE_OF_SERVER = {"redis_server": BUILT_IN, "redis_stack": QUERY_ENGINE}


@pytest.fixture(params=list(ENGINE_OF_SERVER), ids=list(ENGINE_OF_SERVER.values()))
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """Debian's redis-server 7.0, or a Redis Stack server, emptied for the test."""
    started: RedisServer = request.getfixturevalue(request.param)
    with started.client() as client:
        client.flushall()
    yield started


@pytest.fixture
def engine(server: RedisServer, request: pytest.FixtureRequest) -> str:
    """The engine the app picks on this server."""
    return ENGINE_OF_SERVER[request.node.callspec.params["server"]]


def index_holds(db: redis.Redis, engine: str, word: str) -> bool:
    """Whether the index still holds a word anywhere (not just whether a search finds it)."""
    if engine == QUERY_ENGINE:  # the engine's documents, and the newest messages kept beside them
        tails = (db.get(key) or "" for key in db.scan_iter("*:x:qt:*"))
        return int(db.ft(INDEX).search(word).total) > 0 or any(f" {word} " in tail for tail in tails)
    return any(db.hexists(k, word) for k in db.scan_iter("*:x:w[it]:*"))


@pytest.fixture
def db(server: RedisServer) -> Iterator[redis.Redis]:
    with server.client(decode_responses=True) as client:
        yield client


@pytest.fixture
def app(server: RedisServer, make_app: AppFactory) -> Flask:
    """The app on this test's server (in place of conftest's, on Debian's alone); conftest's
    ``client`` (an operator) and ``api`` are made on it."""
    return make_app(REDIS_URL=server.url, RATELIMIT_ENABLED=False)


@pytest.fixture
def operator(client: FlaskClient) -> FlaskClient:
    return client


def find(client: Any, q: str, **query: Any) -> dict:
    response = client.get("/api/search", query_string={"q": q, **query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(answer: dict) -> list[str]:
    return [r["session_id"] for r in answer["results"]]


def session_with(api: Api, *messages: str, user: str = "ann", **extra: Any) -> str:
    sid = api.create(user_id=user, **extra)["session_id"]
    for text in messages:
        api.send(sid, text)
    return sid


def test_a_word_finds_the_sessions_that_hold_it_and_only_those(api, operator):
    kayak = session_with(api, "We rented a kayak on the lake")
    session_with(api, "We walked around the lake")

    answer = find(operator, "kayak", user_id="ann")

    assert ids(answer) == [kayak] and answer["count"] == 1
    assert answer["results"][0]["snippets"][0]["message_index"] == 0


def test_every_word_must_be_in_the_session_though_in_different_messages(api, operator):
    both = session_with(api, "Pack the tent tonight", "Remember the marshmallows")
    session_with(api, "Pack the tent tonight")

    assert ids(find(operator, "tent marshmallows", user_id="ann")) == [both]


def test_a_quoted_phrase_needs_its_words_in_a_row_in_one_message(api, operator):
    in_a_row = session_with(api, "the blue whale sings")
    apart = session_with(api, "a whale, and something blue")
    across = session_with(api, "everything is blue", "whale songs")

    answer = find(operator, '"blue whale"', user_id="ann")

    assert ids(answer) == [in_a_row]
    assert apart not in ids(answer) and across not in ids(answer)
    assert set(ids(find(operator, "blue whale", user_id="ann"))) == {in_a_row, apart, across}


def test_a_prefix_finds_every_word_it_begins(api, operator):
    project = session_with(api, "The project is late")
    projector = session_with(api, "Bring the projector")
    prose = session_with(api, "A prose poem")

    assert set(ids(find(operator, "proj*", user_id="ann"))) == {project, projector}
    assert set(ids(find(operator, "p*", user_id="ann"))) == {project, projector, prose}
    assert ids(find(operator, '"bring the proj*"', user_id="ann")) == [projector]


@pytest.mark.parametrize(
    ("stored", "query"),
    [("Un café au lait", "cafe"), ("un cafe noir", "Café"), ("STRASSE", "straße"), ("Ærø", "aero"), ("naïve", "NAIVE")],
)
def test_case_and_accents_do_not_matter(api, operator, stored, query):
    sid = session_with(api, stored)

    assert ids(find(operator, query, user_id="ann")) == [sid]


def test_words_a_query_language_might_read_as_syntax_are_just_words(api, operator):
    """The Query Engine parses a query: what a visitor types must never reach it as syntax."""
    sid = session_with(api, "1e5 inf nan NOT or ismissing 3.14 日本語のテキスト 😀emoji")
    queries = ["1e5", "inf", "nan", "not", "OR", "ismissing", '"3 14"', "n*", '"nan not*"']
    for q in [*queries, "日本語のテキスト", "😀emoji"]:
        assert ids(find(operator, q, user_id="ann")) == [sid], q
    assert find(operator, '"or not"', user_id="ann")["count"] == 0


def test_title_and_description_hits_rank_first(api, operator):
    # (a session's title is its first user message unless named: the volcano comes later here)
    in_messages = session_with(api, "notes about the trip", "more volcano volcano photos")
    in_title = session_with(api, "what to pack", display_name="Volcano weekend")
    in_description = session_with(api, "nothing here", description="All about the volcano")
    api.send(in_messages, "the volcano again")  # the most recent, and the most mentions

    answer = find(operator, "volcano", user_id="ann")

    assert ids(answer)[2:] == [in_messages]
    assert set(ids(answer)[:2]) == {in_title, in_description}
    assert answer["results"][0]["snippets"] == [] or answer["results"][0]["title"] is not None


def test_snippets_cut_around_the_hit_with_exact_offsets(api, operator):
    before = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4
    after = " Sed do eiusmod tempor incididunt ut labore et dolore magna aliqua." * 4
    sid = session_with(api, "short first", before + "Our Crème Brûlée recipe" + after)

    result = find(operator, '"creme brulee"', user_id="ann")["results"][0]
    (snippet,) = result["snippets"]

    assert result["session_id"] == sid and snippet["message_index"] == 2 and snippet["role"] == "user"
    assert snippet["text"].startswith("…") and snippet["text"].endswith("…")
    assert 100 <= len(snippet["text"]) <= 165
    assert [snippet["text"][s:e] for s, e in snippet["highlights"]] == ["Crème Brûlée"]
    assert snippet["text"][1:-1] in before + "Our Crème Brûlée recipe" + after


def test_every_hit_in_a_snippet_is_highlighted(api, operator):
    session_with(api, "Apples, then pears, then apples again")

    (snippet,) = find(operator, "apple* pears", user_id="ann")["results"][0]["snippets"]

    assert snippet["text"] == "Apples, then pears, then apples again"
    assert [snippet["text"][s:e] for s, e in snippet["highlights"]] == ["Apples", "pears", "apples"]


def test_a_visitor_never_gets_another_visitors_hits(app, api):
    alice, bob = Visitor(app), Visitor(app)
    mine = alice.create()["session_id"]
    alice.send(mine, "my shared word is giraffe")
    theirs = bob.create()["session_id"]
    bob.send(theirs, "giraffe and the secret zanzibarish plan")

    assert ids(find(alice.client, "giraffe")) == [mine]
    assert find(alice.client, "zanzibarish")["count"] == 0  # a word only Bob ever wrote
    assert ids(find(alice.client, "giraffe", user_id=bob.user_id)) == [mine]  # a visitor names only itself
    assert set(ids(find(api.client, "giraffe"))) == {mine, theirs}  # an operator: everyone's
    assert ids(find(api.client, "giraffe", user_id=bob.user_id)) == [theirs]


def test_clear_and_delete_remove_the_hits_at_once(api, operator, db):
    cleared = session_with(api, "hello", "the armadillo sleeps", display_name="Armadillo notes")
    deleted = session_with(api, "another armadillo")

    operator.delete(f"/api/session/{cleared}/clear")
    answer = find(operator, "armadillo", user_id="ann")
    assert set(ids(answer)) == {cleared, deleted}
    assert answer["results"][ids(answer).index(cleared)]["snippets"] == []  # only its name holds it now
    assert find(operator, "sleeps", user_id="ann")["count"] == 0  # (its title is "hello")

    operator.delete(f"/api/sessions/{deleted}")
    operator.delete(f"/api/sessions/{cleared}")
    assert find(operator, "armadillo", user_id="ann")["count"] == 0
    leftovers = [k for k in db.scan_iter("*:x:*") if not k.endswith(":x:uids")]
    assert leftovers == []  # nothing of either stays in the index


def test_a_long_session_is_searched_whole_and_edits_reach_the_index(api, operator, db, engine):
    """Long enough for the Query Engine's sealed blocks of messages (about 2 KB of words each)
    and its tail of the newest ones: a search needs both."""
    filler = "with some ordinary words to make the message long enough to count"
    texts = ["the aardvark starts here"] + [f"message {n} {filler}" for n in range(1, 39)] + ["the zebra ends it"]
    sid = session_with(api, *texts)
    last = 2 * (len(texts) - 1)  # each message has its (offline) reply after it
    if engine == QUERY_ENGINE:
        (tail,) = db.keys(f"*:x:qt:{sid}")
        sealed = int(db.hget(tail.replace(f"x:qt:{sid}", "x:qn"), sid))
        assert sealed >= 2 and "aardvark" in db.hget(tail.replace("x:qt:", "x:q:") + ":0", "w")
        assert "zebra" in db.get(tail) and "zebra" not in db.hget(tail.replace("x:qt:", "x:q:") + f":{sealed - 1}", "w")

    answer = find(operator, "aardvark zebra", user_id="ann")
    assert ids(answer) == [sid]
    assert {s["message_index"] for s in answer["results"][0]["snippets"]} == {0, last}
    assert find(operator, '"message 37 with"', user_id="ann")["results"][0]["snippets"][0]["message_index"] == 2 * 37
    assert find(operator, '"count message"', user_id="ann")["count"] == 0  # a phrase stays in its message

    edited = operator.put(f"/api/sessions/{sid}/messages/{last}", json={"content": "the quagga ends it"})
    assert edited.status_code == 201, edited.get_json()
    assert find(operator, "zebra", user_id="ann")["count"] == 0
    (snippet,) = find(operator, "quagga", user_id="ann")["results"][0]["snippets"]
    assert snippet["message_index"] == last and snippet["text"] == "the quagga ends it"
    assert ids(find(operator, "aardvark", user_id="ann")) == [sid]  # the rest stays

    shown = operator.put(f"/api/sessions/{sid}/messages/{last}/version", json={"version": 0})
    assert shown.status_code == 200, shown.get_json()
    assert ids(find(operator, "zebra", user_id="ann")) == [sid]
    assert find(operator, "quagga", user_id="ann")["count"] == 0


def test_pinned_and_archived_sessions_are_found(api, operator):
    pinned = session_with(api, "the pangolin")
    archived = session_with(api, "the pangolin")
    operator.patch(f"/api/sessions/{pinned}", json={"pinned": True})
    operator.patch(f"/api/sessions/{archived}", json={"archived": True})

    assert set(ids(find(operator, "pangolin", user_id="ann"))) == {pinned, archived}


def test_renaming_changes_what_the_title_finds(api, operator):
    sid = session_with(api, "hello", display_name="Old pelican")
    operator.patch(f"/api/sessions/{sid}", json={"display_name": "New flamingo"})

    assert find(operator, "pelican", user_id="ann")["count"] == 0
    assert ids(find(operator, "flamingo", user_id="ann")) == [sid]


def test_an_expired_session_never_answers_and_leaves_the_index(server, make_app, db, engine):
    app = make_app(REDIS_URL=server.url, RATELIMIT_ENABLED=False, SESSION_TIMEOUT=1)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = session_with(Api(client), "the ocelot naps")
    assert ids(find(client, "ocelot", user_id="ann")) == [sid]

    time.sleep(1.2)

    assert find(client, "ocelot", user_id="ann")["count"] == 0
    Api(client).create(user_id="ann")  # any write in the shard prunes, and takes the words out
    find(client, "ocelot", user_id="ann")
    assert not index_holds(db, engine, "ocelot")


def test_filters_narrow_the_results(api, operator):
    nurse = session_with(api, "the heron", persona="mental_health_nurse")
    kept = session_with(api, "the heron")
    operator.patch(f"/api/sessions/{kept}", json={"archived": True})
    today = time.strftime("%Y-%m-%d", time.gmtime())

    assert ids(find(operator, "heron", user_id="ann", persona="mental_health_nurse")) == [nurse]
    assert ids(find(operator, "heron", user_id="ann", archived="true")) == [kept]
    assert ids(find(operator, "heron", user_id="ann", archived="false")) == [nurse]
    assert find(operator, "heron", user_id="ann", **{"from": today, "to": today})["count"] == 2
    assert find(operator, "heron", user_id="ann", to="2000-01-01")["count"] == 0


def test_pages_follow_the_ranking(api, operator):
    made = [session_with(api, f"lemur number {n}") for n in range(5)]

    first = find(operator, "lemur", user_id="ann", limit=2)
    rest = find(operator, "lemur", user_id="ann", limit=10, offset=2)

    assert first["count"] == 5 and first["next_offset"] == 2 and rest["next_offset"] is None
    assert ids(first) + ids(rest) == made[::-1]  # equally relevant: the newest first


@pytest.mark.parametrize(
    ("q", "why"),
    [
        ("", "Give some words"),
        ("   ", "Give some words"),
        ("x" * 201, "at most 200"),
        ('"unclosed phrase', "pairs of"),
        ("*", "at least one word"),
        ("** *", "at least one word"),
        ('"" *', "at least one word"),
    ],
)
def test_a_query_that_cannot_be_searched_is_a_400(operator, q, why):
    response = operator.get("/api/search", query_string={"q": q})

    assert response.status_code == 400
    assert why in response.get_json()["error"]["message"]


def test_reindex_indexes_data_stored_before_the_index(app, api, operator, db):
    old = session_with(api, "the narwhal tusk", display_name="Arctic")
    also = session_with(api, "narwhal pods", user="bea")
    for key in db.scan_iter("*:x:*"):  # as if stored by a version without search
        db.delete(key)
    assert find(operator, "narwhal")["count"] == 0

    runner = app.test_cli_runner()
    result = runner.invoke(args=["search", "reindex"])
    again = runner.invoke(args=["search", "reindex"])

    assert result.exit_code == 0 and "Indexed 2 session(s)." in result.output
    assert again.exit_code == 0 and "Indexed 2 session(s)." in again.output
    assert set(ids(find(operator, "narwhal"))) == {old, also}
    assert ids(find(operator, "arctic")) == [old]
    assert find(operator, "tusk")["results"][0]["snippets"][0]["text"] == "the narwhal tusk"


def test_reindex_goes_on_where_a_stopped_run_was(app, api, operator, db):
    made = {session_with(api, "a walrus", user=f"user {n}") for n in range(6)}
    for key in db.scan_iter("*:x:*"):
        db.delete(key)
    store = get_store(app)
    walked: list[int] = []

    def stop_after_two_shards(shard: int, done: int) -> None:
        walked.append(shard)
        if len(walked) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.reindex(progress=stop_after_two_shards)
    store.reindex()

    assert set(ids(find(operator, "walrus"))) == made


def test_a_models_reply_is_found_like_any_message(server, make_app, llm):
    llm.reset(pieces=["The ", "tapir ", "sleeps ", "all ", "day."])
    app = make_app(REDIS_URL=server.url, RATELIMIT_ENABLED=False, LLM_BASE_URL=llm.base_url, LLM_MODEL="m")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = session_with(Api(client), "what does the animal do?")

    (snippet,) = find(client, "tapir", user_id="ann")["results"][0]["snippets"]

    assert snippet == {
        "message_index": 1,
        "role": "assistant",
        "text": "The tapir sleeps all day.",
        "highlights": [[4, 9]],
    }
    assert ids(find(client, '"animal do"', user_id="ann")) == [sid]


def test_a_message_changed_in_place_is_found_by_its_new_words_once_refreshed(api, operator, db, engine):
    """The hook for edits and reply versions: search.refresh rebuilds a session's index."""
    sid = session_with(api, "hello", "the first draft says wombat")  # (the title is "hello")
    key = next(k for k in db.scan_iter("*:m:*") if k.endswith(sid))
    db.lset(key, 2, json.dumps({"role": "user", "content": "the second draft says koala"}))
    prefix = key[: key.index("m:")]
    db.register_script(_expand("shard_prelude", engine) + "\nsearch.refresh(ARGV[2])")(keys=[key], args=[prefix, sid])

    assert find(operator, "wombat", user_id="ann")["count"] == 0
    assert ids(find(operator, "koala", user_id="ann")) == [sid]


def test_searches_spend_their_own_rate_limit(server, make_app):
    app = make_app(REDIS_URL=server.url, SEARCH_RATE_LIMIT="2 per minute")
    visitor = Visitor(app)

    answers = [visitor.request("GET", "/api/search?q=anything").status_code for _ in range(3)]

    assert answers == [200, 200, 429]


def test_lua_and_python_split_text_into_the_same_words(db):
    script = db.register_script(_expand("shard_prelude") + "\nreturn search_words(ARGV[2])")
    texts = [
        "Crème Brûlée, naïve café — “quoted” text…",
        "ΣΊΣΥΦΟΣ Ärger straße ǅemal İstanbul",
        "Ｆｕｌｌ ｗｉｄｔｈ, ½ ™ x²",
        "日本語のテキスト 😀emoji don't e-mail",
        "tab\tnew\nline; (paren) [b] {c} <d> a/b a\\b",
    ]
    for text in texts:
        assert script(keys=[], args=["chatapp:v2:{x}:", text]) == words(text), text


def test_health_names_the_engine(app, operator, engine):
    assert operator.get("/health").get_json()["search"] == engine
    assert "search" not in app.test_client().get("/health").get_json()  # details are for operators
