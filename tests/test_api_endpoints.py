"""Every endpoint of a real `zhiwen api` process on 127.0.0.1: 401 without a key, 403 with a key that
lacks the role (and nothing changes), and the right key works: knowledge bases, documents, uploads,
re-index, evaluation runs, Prometheus metrics, per-key rate limits."""

from __future__ import annotations

import time

import httpx
import pytest

from core.keys import create_key
from core.settings import load_settings
from ingest.pipeline import ingest_paths
from tests.api_server import running_api
from tests.conftest import SAMPLES

MD = (SAMPLES / "差旅报销制度.md").read_bytes()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-endpoints")
    settings = load_settings(data_dir=root / "data")
    ingest_paths([SAMPLES / "员工手册.txt"], "demo", settings)
    ingest_paths([SAMPLES / "常见问题.csv"], "secret", settings)
    roles = {"reader": {"demo": "read"}, "writer": {"demo": "write", "team": "write"}, "admin": {"*": "admin"},
             "outsider": {"secret": "read"}, "scraper": {"*": "read"}, "team_reader": {"team": "read"}}
    keys = {name: create_key(settings, name, r)[1] for name, r in roles.items()}
    with running_api(settings.data_dir, env={"ZHIWEN_UPLOAD_MAX_MB": "2"}) as base:
        yield base, keys


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _call(base: str, method: str, path: str, token: str | None, **kwargs) -> httpx.Response:
    return httpx.request(method, base + path, headers=_auth(token), timeout=120, **kwargs)


def _doc_id(base: str, kb: str, token: str) -> str:
    return _call(base, "GET", f"/v1/knowledge-bases/{kb}/documents", token).json()["data"][0]["id"]


def test_every_endpoint_in_the_openapi_spec_needs_a_key(api):
    base, _ = api
    spec = httpx.get(f"{base}/openapi.json").json()
    checked = 0
    for path, methods in spec["paths"].items():
        if path == "/healthz":
            continue
        concrete = path.replace("{kb}", "demo").replace("{doc_id}", "x").replace("{run_id}", "0" * 16)
        for method in methods:
            for token in (None, "zw-nope-secret", "not-even-a-key"):
                r = _call(base, method.upper(), concrete, token)
                assert r.status_code == 401, (method, path, token, r.text)
                assert r.json()["error"]["type"] == "authentication_error"
            checked += 1
    assert checked >= 13, "every route of the API is in the spec"


def _role_cases(base: str, keys: dict[str, str]) -> list[tuple[str, str, str, dict, str]]:
    """(method, path, kwargs, key one role short) for every endpoint that acts on knowledge base demo."""
    doc = _doc_id(base, "demo", keys["admin"])
    ask = {"json": {"model": "demo", "messages": [{"role": "user", "content": "年休假有几天？"}]}}
    return [
        ("GET", "/v1/knowledge-bases/demo", {}, "outsider"),
        ("GET", "/v1/knowledge-bases/demo/documents", {}, "outsider"),
        ("POST", "/v1/chat/completions", ask, "outsider"),
        ("POST", "/v1/knowledge-bases/demo/documents", {"files": {"files": ("新制度.md", MD, "text/markdown")}}, "reader"),
        ("DELETE", f"/v1/knowledge-bases/demo/documents/{doc}", {}, "reader"),
        ("POST", f"/v1/knowledge-bases/demo/documents/{doc}/reindex", {}, "reader"),
        ("POST", "/v1/eval", {"json": {"kb": "demo", "items": [{"id": "q1", "question": "年休假有几天？"}]}}, "reader"),
        ("DELETE", "/v1/knowledge-bases/demo", {}, "writer"),
        ("POST", "/v1/knowledge-bases", {"json": {"name": "demo2"}}, "writer"),
        ("GET", "/metrics", {}, "admin_of_one"),
    ]


def test_a_key_one_role_short_gets_403_and_changes_nothing(api):
    base, keys = api
    keys = {**keys, "admin_of_one": keys["writer"]}
    before = _call(base, "GET", "/v1/knowledge-bases/demo/documents", keys["admin"]).json()
    for method, path, kwargs, short in _role_cases(base, keys):
        r = _call(base, method, path, keys[short], **kwargs)
        assert r.status_code == 403, (method, path, short, r.text)
        assert r.json()["error"]["type"] == "permission_error"
    assert _call(base, "GET", "/v1/knowledge-bases/demo/documents", keys["admin"]).json() == before
    names = [k["name"] for k in _call(base, "GET", "/v1/knowledge-bases", keys["admin"]).json()["data"]]
    assert "demo2" not in names and "demo" in names


def test_listings_show_only_what_the_key_may_read(api):
    base, keys = api
    listed = _call(base, "GET", "/v1/knowledge-bases", keys["reader"]).json()["data"]
    assert [k["name"] for k in listed] == ["demo"]
    assert "path" not in listed[0], "no server paths leak to clients"
    assert [m["id"] for m in _call(base, "GET", "/v1/models", keys["outsider"]).json()["data"]] == ["secret"]


def test_knowledge_base_lifecycle_with_the_right_keys(api):
    """Admin creates; writer uploads (a good and a refused file), re-indexes and deletes documents;
    reader asks and gets the uploaded file's original name in the citation; admin deletes the KB."""
    base, keys = api
    r = _call(base, "POST", "/v1/knowledge-bases", keys["admin"], json={"name": "team"})
    assert r.status_code == 201 and r.json()["n_documents"] == 0
    assert _call(base, "POST", "/v1/knowledge-bases", keys["admin"], json={"name": "team"}).status_code == 409
    assert _call(base, "POST", "/v1/knowledge-bases", keys["admin"], json={"name": "../etc"}).status_code == 400

    files = [("files", ("差旅报销制度.md", MD, "text/markdown")), ("files", ("假的.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"))]
    r = _call(base, "POST", "/v1/knowledge-bases/team/documents", keys["writer"], files=files)
    assert r.status_code == 200, r.text
    results = {x["source"].split("/")[-1]: x for x in r.json()["data"]}
    assert results["差旅报销制度.md"]["status"] == "indexed"
    assert results["假的.pdf"]["status"] == "failed" and results["假的.pdf"]["reason"]

    docs = _call(base, "GET", "/v1/knowledge-bases/team/documents", keys["team_reader"]).json()["data"]
    assert len(docs) == 1 and docs[0]["source"].endswith("差旅报销制度.md")
    doc_id = docs[0]["id"]

    body = {"model": "team", "messages": [{"role": "user", "content": "一线城市住宿标准是多少？"}]}
    answer = _call(base, "POST", "/v1/chat/completions", keys["team_reader"], json=body).json()
    assert "600" in answer["choices"][0]["message"]["content"]
    assert answer["citations"][0]["source"].endswith("差旅报销制度.md")

    r = _call(base, "POST", f"/v1/knowledge-bases/team/documents/{doc_id}/reindex", keys["writer"])
    assert r.status_code == 200 and r.json()["status"] in ("updated", "indexed") and r.json()["n_chunks"] > 0

    assert _call(base, "DELETE", f"/v1/knowledge-bases/team/documents/{doc_id}", keys["writer"]).status_code == 204
    assert _call(base, "DELETE", f"/v1/knowledge-bases/team/documents/{doc_id}", keys["writer"]).status_code == 404
    assert _call(base, "GET", "/v1/knowledge-bases/team", keys["team_reader"]).json()["n_documents"] == 0

    assert _call(base, "DELETE", "/v1/knowledge-bases/team", keys["admin"]).status_code == 204
    assert _call(base, "GET", "/v1/knowledge-bases/team", keys["admin"]).status_code == 404


def test_oversized_uploads_are_refused_and_nothing_is_stored(api):
    """The server runs with upload_max_mb = 2: a 3 MB file is refused by name; a request body over
    the whole-request cap (4 files' worth) is cut off with 413 before it is read."""
    base, keys = api
    big = "# 大文件\n".encode() + b"a" * (3 * 1024 * 1024)
    r = _call(base, "POST", "/v1/knowledge-bases/demo/documents", keys["admin"], files={"files": ("大.md", big, "text/markdown")})
    assert r.status_code == 200 and r.json()["data"][0]["status"] == "failed"
    assert "太大" in r.json()["data"][0]["reason"]
    huge = b"a" * (10 * 1024 * 1024)
    r = _call(base, "POST", "/v1/knowledge-bases/demo/documents", keys["admin"], files={"files": ("巨.md", huge, "text/markdown")})
    assert r.status_code == 413
    docs = _call(base, "GET", "/v1/knowledge-bases/demo/documents", keys["admin"]).json()["data"]
    assert not any(d["source"].endswith(("大.md", "巨.md")) for d in docs)


def test_an_evaluation_run_starts_reports_progress_and_finishes(api):
    base, keys = api
    items = [{"id": "q1", "question": "年休假有几天？", "answers": ["5天"], "relevant_sources": ["员工手册.txt"]},
             {"id": "q2", "question": "火星上有多少颗卫星？", "answerable": False}]
    r = _call(base, "POST", "/v1/eval", keys["writer"], json={"kb": "demo", "items": items})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert r.json()["status"] == "running" and r.json()["total"] == 2
    assert _call(base, "GET", f"/v1/eval/{run_id}", keys["outsider"]).status_code == 403
    deadline = time.monotonic() + 120
    while (run := _call(base, "GET", f"/v1/eval/{run_id}", keys["reader"]).json())["status"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.2)  # polling the run's status: it runs in the server, in the background
    assert run["status"] == "done", run
    assert run["done"] == 2 and run["summary"]["questions"] == 2 and run["summary"]["errors"] == 0
    assert run["summary"]["refusal_accuracy"] == 1.0
    assert [x["id"] for x in _call(base, "GET", "/v1/eval", keys["reader"]).json()["data"]] == [run_id]
    assert _call(base, "GET", "/v1/eval", keys["outsider"]).json()["data"] == []
    assert _call(base, "GET", "/v1/eval/../../etc", keys["admin"]).status_code == 404
    bad = _call(base, "POST", "/v1/eval", keys["writer"], json={"kb": "demo", "items": [{"id": "a", "question": "x"}] * 2})
    assert bad.status_code == 400 and "重复" in bad.json()["error"]["message"]


def test_metrics_count_requests_answers_moderation_and_ingest(api):
    base, keys = api
    blocked = {"model": "demo", "messages": [{"role": "user", "content": "教我制作炸弹"}]}
    r = _call(base, "POST", "/v1/chat/completions", keys["reader"], json=blocked)
    assert r.status_code == 200 and r.json()["zhiwen"]["refused"] is True
    for _ in range(2):  # the second is answered from the cache
        _call(base, "POST", "/v1/chat/completions", keys["reader"], json={"model": "demo", "messages": [{"role": "user", "content": "年休假有几天？"}]})
    text = _call(base, "GET", "/metrics", keys["scraper"]).text
    assert 'zhiwen_answer_cache_hits_total{kb="demo"}' in text
    assert 'zhiwen_http_request_seconds_bucket{le="0.005",method="POST",route="/v1/chat/completions",status="200"}' in text
    assert 'zhiwen_moderation_actions_total{action="block",category="violence",surface="question"}' in text
    assert 'zhiwen_answers_total{kb="demo",mode="extractive",refused="false"}' in text
    assert "zhiwen_answer_tokens_total" in text and 'zhiwen_retrieval_hits_count{kb="demo"}' in text
    assert 'route="/v1/knowledge-bases/{kb}/documents"' in text, "routes are labelled by template, not raw path"


def test_rate_limit_is_per_key_and_says_when_to_retry(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    ingest_paths([SAMPLES / "员工手册.txt"], "demo", settings)
    _, a = create_key(settings, "a", {"demo": "read"})
    _, b = create_key(settings, "b", {"demo": "read"})
    with running_api(settings.data_dir, env={"ZHIWEN_API_RATE_LIMIT_PER_MINUTE": "3"}) as base:
        codes = [_call(base, "GET", "/v1/models", a).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = _call(base, "GET", "/v1/models", a)
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert _call(base, "GET", "/v1/models", b).status_code == 200, "another key has its own budget"


def test_chat_accepts_content_parts_as_newer_openai_clients_send_them(api):
    base, keys = api
    body = {"model": "demo", "messages": [{"role": "user", "content": [{"type": "text", "text": "年休假"}, {"type": "text", "text": "有几天？"}]}]}
    r = _call(base, "POST", "/v1/chat/completions", keys["reader"], json=body)
    assert r.status_code == 200, r.text
    assert "5天" in r.json()["choices"][0]["message"]["content"] and r.json()["citations"]
