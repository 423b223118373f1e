"""GenAIEmbedder through the real google-genai client, against a local stand-in of the Gemini API.

There is no network here: a loopback HTTP server answers ``batchEmbedContents`` the way the Gemini API
does (vectors derived from the texts), so the test proves the request we send (model, texts in order,
output dimensionality, API key) and the parsing of the reply, end to end into hybrid memory search.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google import genai
from google.adk.events.event import Event
from google.genai import types

from adk_redis import RedisMemoryService
from adk_redis.memory.embeddings import GenAIEmbedder, HashingEmbedder

APP = "app"
SYNONYMS = {"feline": "cat", "cats": "cat", "kittens": "cat", "pets": "pet"}


class _FakeGemini(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "key": self.headers.get("x-goog-api-key"), "body": body}
        )
        texts = [" ".join(p["text"] for p in r["content"]["parts"]) for r in body["requests"]]
        dim = body["requests"][0].get("outputDimensionality", 256)
        vectors = HashingEmbedder(dim=dim, synonyms=SYNONYMS)
        out = {"embeddings": [{"values": vectors._vector(t)} for t in texts]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gemini() -> Iterator[str]:
    _FakeGemini.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGemini)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _embedder(base_url: str, dim: int = 64) -> GenAIEmbedder:
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=base_url))
    return GenAIEmbedder(client=client, dim=dim)


async def test_request_and_reply(gemini: str) -> None:
    vectors = await _embedder(gemini).embed(["first text", "second text", "third"])
    assert len(vectors) == 3 and all(len(v) == 64 for v in vectors)
    assert vectors[0] == pytest.approx(HashingEmbedder(dim=64, synonyms=SYNONYMS)._vector("first text"))
    (req,) = _FakeGemini.requests
    assert req["path"].endswith("models/gemini-embedding-001:batchEmbedContents")
    assert req["key"] == "test-key"
    sent = [r["content"]["parts"][0]["text"] for r in req["body"]["requests"]]
    assert sent == ["first text", "second text", "third"]
    assert {r["outputDimensionality"] for r in req["body"]["requests"]} == {64}


async def test_hybrid_memory_search_through_genai(gemini: str, redis_url: str, prefix: str) -> None:
    def said(text: str) -> Event:
        return Event(author="user", invocation_id="i", content=types.Content(parts=[types.Part(text=text)]))

    events = [said("I adore kittens"), said("the tax return is due in April")]
    async with RedisMemoryService(redis_url, key_prefix=prefix, embedder=_embedder(gemini)) as mem:
        await mem.add_events_to_memory(app_name=APP, user_id="u", events=events, session_id="s")
        # "feline" shares no word with the memory; the (stand-in) embedding model maps it to "cat".
        hits = (await mem.search_memory(app_name=APP, user_id="u", query="feline")).memories
        assert hits and hits[0].custom_metadata["event_id"] == events[0].id
        await mem.forget_user(app_name=APP, user_id="u")
    # One batch for the two events, one call per search.
    assert [len(r["body"]["requests"]) for r in _FakeGemini.requests] == [2, 1]
