"""Events of every shape ADK produces: the corpus the fast decoder is checked (tests/test_event_decode.py)
and timed (bench/decode.py) on."""

from __future__ import annotations

from typing import Any

from google.adk.events.event import Event, NodeInfo
from google.adk.events.event_actions import EventActions, EventCompaction
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.genai import types


def _fc(name: str, args: dict[str, Any], call_id: str) -> types.Part:
    return types.Part(function_call=types.FunctionCall(name=name, args=args, id=call_id))


def _fr(name: str, response: dict[str, Any], call_id: str) -> types.Part:
    return types.Part(function_response=types.FunctionResponse(name=name, response=response, id=call_id))


CORPUS: list[Event] = [
    Event(
        invocation_id="i1",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="Hello")]),
    ),
    Event(
        invocation_id="i1",
        author="agent",
        content=types.Content(role="model", parts=[types.Part(text='Hi! Ünïcode ✓ 😀 "quoted" \n\t\\')]),
        partial=False,
        turn_complete=True,
        finish_reason=types.FinishReason.STOP,
        model_version="gemini-2.5-flash",
        avg_logprobs=-0.25,
    ),
    Event(
        invocation_id="i2",
        author="agent",
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="thinking...", thought=True, thought_signature=b"\x00\x01\xfe\xff sig"),
                _fc(
                    "lookup",
                    {"q": "x", "n": 3, "f": 1.5, "deep": {"a": [1, {"b": None}, [True, False]]}},
                    "c1",
                ),
                _fc("noargs", {}, "c2"),
            ],
        ),
        long_running_tool_ids={"c1", "c2", "c3"},
    ),
    Event(
        invocation_id="i2",
        author="user",
        content=types.Content(
            role="user", parts=[_fr("lookup", {"result": {"rows": [1, 2, 3], "ok": True}}, "c1")]
        ),
        actions=EventActions(skip_summarization=True),
    ),
    Event(
        invocation_id="i3",
        author="user",
        content=types.Content(
            role="user",
            parts=[
                types.Part(
                    inline_data=types.Blob(data=bytes(range(256)), mime_type="image/png", display_name="p")
                ),
                types.Part(inline_data=types.Blob(data=b"", mime_type="audio/wav")),
                types.Part(inline_data=types.Blob(data=b"x", mime_type="a/b")),
                types.Part(inline_data=types.Blob(data=b"xy", mime_type="a/b")),
                types.Part(file_data=types.FileData(file_uri="gs://b/f.pdf", mime_type="application/pdf")),
            ],
        ),
    ),
    Event(
        invocation_id="i4",
        author="agent",
        actions=EventActions(
            state_delta={
                "count": 3,
                "ratio": 0.5,
                "big": 2**70,
                "nested": {"a": [1, 2, {"b": "c"}], "e": {}, "l": []},
                "app:theme": "dark",
                "user:tier": "pro",
                "temp:scratch": [None, True, -0.0],
                "none": None,
            },
            artifact_delta={"report.pdf": 2, "img.png": 0},
        ),
    ),
    Event(
        invocation_id="i5",
        author="router",
        actions=EventActions(transfer_to_agent="billing", transfer_reason="why"),
    ),
    Event(invocation_id="i5", author="billing", actions=EventActions(escalate=True, end_of_agent=True)),
    Event(
        invocation_id="i6",
        author="agent",
        branch="root.child.grandchild",
        error_code="RESOURCE_EXHAUSTED",
        error_message="quota exceeded",
        interrupted=True,
    ),
    Event(
        invocation_id="i7",
        author="agent",
        content=types.Content(role="model", parts=[types.Part(text="ok")]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=10,
            candidates_token_count=5,
            total_token_count=15,
            thoughts_token_count=2,
            prompt_tokens_details=[
                types.ModalityTokenCount(modality=types.MediaModality.TEXT, token_count=10)
            ],
            traffic_type=types.TrafficType.ON_DEMAND,
        ),
        custom_metadata={"k": "v", "n": [1, 2], "m": {"x": None}},
    ),
    Event(
        invocation_id="i8",
        author="agent",
        content=types.Content(role="model", parts=[types.Part(text="grounded")]),
        grounding_metadata=types.GroundingMetadata(
            web_search_queries=["adk redis"],
            grounding_chunks=[types.GroundingChunk(web=types.GroundingChunkWeb(uri="https://x", title="X"))],
            grounding_supports=[
                types.GroundingSupport(
                    segment=types.Segment(start_index=0, end_index=8, text="grounded"),
                    grounding_chunk_indices=[0],
                    confidence_scores=[0.9],
                )
            ],
            search_entry_point=types.SearchEntryPoint(rendered_content="<div/>", sdk_blob=b"\x01\x02"),
        ),
    ),
    Event(
        invocation_id="i9",
        author="agent",
        partial=True,
        content=types.Content(role="model", parts=[types.Part(text="pa")]),
    ),
    Event(invocation_id="i9", author="agent", turn_complete=True),
    Event(
        invocation_id="i10",
        author="wf",
        node_info=NodeInfo(path="wf/A@1/B@2", output_for=["wf/A@1"], message_as_output=True),
    ),
    Event(invocation_id="i10", author="wf", output={"answer": 42, "items": ["a", None]}),
    Event(invocation_id="i10", author="wf", output="plain string output"),
    Event(invocation_id="i10", author="wf", output=[1, 2.5, "x"]),
    Event(invocation_id="i11", author="agent", content=types.Content(role="model", parts=[])),
    Event(invocation_id="i11", author="agent", content=types.Content(role="model")),
    Event(invocation_id="i11", author="agent", content=types.Content()),
    Event(invocation_id="", author=""),
    Event(
        invocation_id="i12",
        author="agent",
        actions=EventActions(
            agent_state={"step": 2, "queue": ["a"]},
            rewind_before_invocation_id="i3",
            requested_tool_confirmations={"c1": ToolConfirmation(hint="ok?", payload={"a": 1})},
            compaction=EventCompaction(
                start_timestamp=1.0,
                end_timestamp=2.0,
                compacted_content=types.Content(role="model", parts=[types.Part(text="summary")]),
            ),
            set_model_response={"x": 1},
        ),
        timestamp=1700000000,
    ),
    Event(
        invocation_id="i13",
        author="agent",
        content=types.Content(
            role="model",
            parts=[
                types.Part(
                    executable_code=types.ExecutableCode(code="print(1)", language=types.Language.PYTHON)
                ),
                types.Part(
                    code_execution_result=types.CodeExecutionResult(
                        outcome=types.Outcome.OUTCOME_OK, output="1\n"
                    )
                ),
                types.Part(text="", thought=False),
                types.Part(text="meta", part_metadata={"src": "f.txt"}),
                types.Part(video_metadata=types.VideoMetadata(fps=2, start_offset="1s")),
            ],
        ),
        input_transcription=types.Transcription(text="hello", finished=True),
        isolation_scope="c1",
    ),
    Event(
        invocation_id="i14",
        author="user",
        content=types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="img",
                        id="c9",
                        response={"ok": True},
                        parts=[
                            types.FunctionResponsePart(
                                inline_data=types.FunctionResponseBlob(data=b"\x89PNG", mime_type="image/png")
                            )
                        ],
                        scheduling=types.FunctionResponseScheduling.SILENT,
                        will_continue=False,
                    )
                )
            ],
        ),
    ),
]

# Shapes known to take the validating path: they must still decode identically.
FALLBACK_CORPUS: list[Event] = [
    Event(invocation_id="r", author="a", actions=EventActions(route="next")),
    Event(invocation_id="r", author="a", actions=EventActions(route=["a", 1, True])),
    Event(
        invocation_id="c",
        author="a",
        citation_metadata=types.CitationMetadata(citations=[types.Citation(uri="https://c", start_index=1)]),
    ),
]
