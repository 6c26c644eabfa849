"""The official `anthropic` SDK through a Gatehouse LLM provider deployed from the control plane."""

import anthropic
import pytest

from fakes import FakeAnthropic


@pytest.fixture
def claude():
    fake = FakeAnthropic("claude")
    yield fake
    fake.close()


def test_messages_plain_and_streamed_through_an_anthropic_provider(stack, claude, unique):
    stack.create("llm-providers", {
        "id": unique, "displayName": unique, "template": "anthropic", "context": f"/{unique}",
        "upstream": {"url": claude.url, "auth": {"type": "api-key", "value": "sk-provider"}}})
    stack.deploy("llm-providers", unique, f"/{unique}/v1/models")
    c = anthropic.Anthropic(base_url=f"{stack.gateway}/{unique}", api_key="client-secret", max_retries=0)
    tokens = lambda kind, n: stack.metric_at(n, "gatehouse_llm_tokens_total", artifact=unique,  # noqa: E731
                                       provider=unique, model="claude-3-5-haiku", type=kind)

    msg = c.messages.create(model="claude-3-5-haiku", max_tokens=64, system="be brief",
                            messages=[{"role": "user", "content": "say hello"}])
    assert msg.content[0].text == "Hello from claude"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, 3)
    assert (tokens("prompt", 4), tokens("completion", 3)) == (4, 3)

    with c.messages.stream(model="claude-3-5-haiku", max_tokens=64,
                           messages=[{"role": "user", "content": "say hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from claude"
    assert final.usage.output_tokens == 3
    assert (tokens("prompt", 6), tokens("completion", 6)) == (6, 6)

    for r in claude.requests:
        headers = {k.lower(): v for k, v in r["headers"].items()}
        assert headers["x-api-key"] == "sk-provider", "the provider's credential, not the client's"
        assert headers["anthropic-version"]
        assert "client-secret" not in str(headers)
