"""The official `openai` SDK through Gatehouse LLM proxies deployed from the control plane."""

import httpx
import openai
import pytest

from fakes import FakeAnthropic, FakeOpenAI

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello"}]


@pytest.fixture
def upstream():
    fake = FakeOpenAI("upstream")
    yield fake
    fake.close()


def provider(stack, name, url, policies=(), template="openai-compatible"):
    stack.create("llm-providers", {
        "id": name, "displayName": name, "template": template, "context": f"/{name}",
        "upstream": {"url": url, "auth": {"type": "api-key", "value": "sk-provider"}},
        "policies": list(policies)})
    stack.deploy("llm-providers", name)


def proxy(stack, name, **spec):
    stack.create("llm-proxies", {"id": name, "displayName": name, "context": f"/{name}", **spec})
    stack.deploy("llm-proxies", name, f"/{name}/models")


def client(stack, name):
    return openai.OpenAI(base_url=f"{stack.gateway}/{name}", api_key="client-secret", max_retries=0)


def test_chat_completions_plain_and_streamed_with_usage_counted(stack, upstream, unique):
    provider(stack, f"{unique}-p", upstream.url + "/v1")
    proxy(stack, unique, provider={"id": f"{unique}-p"})
    c = client(stack, unique)
    tokens = lambda kind, n: stack.metric_at(n, "gatehouse_llm_tokens_total", artifact=unique,  # noqa: E731
                                       provider=f"{unique}-p", model="gpt-4o-mini", type=kind)

    answer = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from upstream"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 3)
    assert (tokens("prompt", 4), tokens("completion", 3)) == (4, 3)

    chunks = list(c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == "Hello from upstream"
    assert all(ch.choices for ch in chunks), "no usage-only chunk the client did not ask for"
    assert all("usage" not in ch.model_fields_set for ch in chunks), "no usage member, not even null"
    sent = upstream.requests[-1]
    assert sent["body"]["stream_options"] == {"include_usage": True}, "the gateway asked for usage"
    assert (tokens("prompt", 8), tokens("completion", 6)) == (8, 6), "streamed usage counted"

    chunks = list(c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}))
    usage_chunks = [ch for ch in chunks if not ch.choices]
    assert len(usage_chunks) == 1 and usage_chunks[0].usage.completion_tokens == 3
    assert (tokens("prompt", 12), tokens("completion", 9)) == (12, 9)
    assert stack.metric_at(3, "gatehouse_llm_requests_total", artifact=unique, status="200") == 3

    # The provider's credential went upstream, never the client's.
    for r in upstream.requests:
        headers = {k.lower(): v for k, v in r["headers"].items()}
        assert headers["authorization"] == "Bearer sk-provider"
        assert "client-secret" not in str(headers)


def test_a_model_outside_the_allow_list_is_a_bad_request_naming_it(stack, upstream, unique):
    provider(stack, f"{unique}-p", upstream.url + "/v1")
    proxy(stack, unique, provider={"id": f"{unique}-p"},
          policies=[{"name": "model-allow-list", "params": {"models": ["gpt-4o*"]}}])
    c = client(stack, unique)
    assert c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
    seen = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="o1-preview", messages=MESSAGES)
    assert e.value.code == "model_not_allowed"
    assert "o1-preview" in e.value.message
    assert len(upstream.requests) == seen, "the provider never saw it"


def test_the_token_limit_lets_the_crossing_request_finish_then_rate_limits(stack, upstream, unique):
    provider(stack, f"{unique}-p", upstream.url + "/v1")
    proxy(stack, unique, provider={"id": f"{unique}-p"},
          policies=[{"name": "token-rate-limit", "params": {"tokens": 10, "window": "1h"}}])
    c = client(stack, unique)
    c.chat.completions.create(model="m", messages=MESSAGES)  # 7 tokens
    chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))  # 14: crosses
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "Hello from upstream"
    # The stream's tokens count once the gateway has read its end.
    assert stack.metric_at(6, "gatehouse_llm_tokens_total", artifact=unique, type="completion") == 6
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=MESSAGES)
    headers = e.value.response.headers
    assert int(headers["retry-after"]) > 0
    assert headers["ratelimit-limit"] == "10" and headers["ratelimit-remaining"] == "0"
    assert len(upstream.requests) == 2


def test_failover_from_a_failing_provider_without_sdk_retries(stack, unique):
    down, up = FakeOpenAI("down"), FakeOpenAI("up")
    down.fail_with = 503
    try:
        provider(stack, f"{unique}-a", down.url + "/v1")
        provider(stack, f"{unique}-b", up.url + "/v1")
        proxy(stack, unique, providers=[{"id": f"{unique}-a", "priority": 0}, {"id": f"{unique}-b", "priority": 1}],
              failover={"cooldown": "1h"})
        c = client(stack, unique)
        assert c.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "Hello from up"
        assert (len(down.requests), len(up.requests)) == (1, 1)
        chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "Hello from up"
        assert (len(down.requests), len(up.requests)) == (1, 2), "the failed provider cools down"
        assert stack.metric_at(2, "gatehouse_llm_requests_total", artifact=unique, provider=f"{unique}-b") == 2
        assert stack.metric_at(1, "gatehouse_llm_failovers_total", artifact=unique, provider=f"{unique}-a") == 1
    finally:
        down.close()
        up.close()


def test_openai_clients_reach_an_anthropic_provider(stack, unique):
    claude = FakeAnthropic("claude")
    try:
        provider(stack, f"{unique}-p", claude.url, template="anthropic")
        proxy(stack, unique, provider={"id": f"{unique}-p"}, api="openai")
        c = client(stack, unique)
        answer = c.chat.completions.create(model="claude-3-5-haiku", messages=MESSAGES, max_tokens=100)
        assert answer.choices[0].message.content == "Hello from claude"
        assert answer.choices[0].finish_reason == "stop"
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 3)
        sent = claude.requests[-1]
        assert sent["path"] == "/v1/messages"
        assert sent["body"]["system"] == "be brief"
        assert sent["body"]["max_tokens"] == 100
        headers = {k.lower(): v for k, v in sent["headers"].items()}
        assert headers["x-api-key"] == "sk-provider" and headers["anthropic-version"]

        chunks = list(c.chat.completions.create(model="claude-3-5-haiku", messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True}))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Hello from claude"
        assert [ch.usage.completion_tokens for ch in chunks if not ch.choices] == [3]
        assert stack.metric_at(6, "gatehouse_llm_tokens_total", artifact=unique, type="completion") == 6
    finally:
        claude.close()


def test_a_malformed_body_is_a_clear_error(stack, upstream, unique):
    provider(stack, f"{unique}-p", upstream.url + "/v1")
    proxy(stack, unique, provider={"id": f"{unique}-p"})
    r = httpx.post(f"{stack.gateway}/{unique}/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]["message"]
