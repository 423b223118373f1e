"""The design's "Complete Integration" example (only the import path changed)."""
# ruff: noqa: I001, F841  (kept verbatim from the design doc)

import asyncio
from adk_redis import (
    get_session_store,
    store_user_context,
    store_agent_memory,
    get_session_store_stats,
    shutdown_session_store,
)


async def research_workflow_example():
    """Example research workflow using Redis session store."""

    # Get session store (automatically uses Redis if available)
    store = get_session_store()

    # Create research session
    session_id = "research_001"
    user_id = 123

    session = store.ensure_session(session_id, user_id=user_id, title="AI Safety Research", status="active")

    # Store user research preferences
    await store_user_context(
        user_id,
        "research_prefs",
        {"depth": "comprehensive", "sources": ["academic", "industry"], "format": "detailed"},
    )

    # Add research conversation
    messages = [
        {"role": "user", "content": "Research AI safety developments"},
        {"role": "assistant", "content": "Starting comprehensive research..."},
        {"role": "system", "content": "Phase 1: Literature review"},
    ]

    for msg in messages:
        store.add_message(session_id, msg)

    # Store agent learning
    await store_agent_memory(
        "research_agent",
        "user_patterns",
        {"user_id": user_id, "research_topics": ["AI safety"], "preferred_depth": "comprehensive"},
    )

    # Show statistics
    stats = get_session_store_stats()
    print(f"Using {stats['store_type']} store with {stats['total_sessions']} sessions")

    # Cleanup
    await shutdown_session_store()


# Run the example (a configuration error, e.g. a malformed REDIS_URL, is one line and exit code 2)
if __name__ == "__main__":
    import sys
    from adk_redis import ConfigurationError

    try:
        asyncio.run(research_workflow_example())
    except ConfigurationError as exc:
        print(f"research_workflow: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
