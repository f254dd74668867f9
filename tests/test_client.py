"""The upstream client: request shapes, the error mapping, and when it retries."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest
import respx

from cutout_mcp.config import Settings
from cutout_mcp.core.inputs.netguard import GuardedBackend, guarded_transport
from cutout_mcp.core.outputs.downloads import Downloads
from cutout_mcp.upstream import errors
from cutout_mcp.upstream.client import CutoutClient, RetryPolicy

from .conftest import API_KEY, envelope, video_job
from .netfakes import FakeDNS, FakeNetwork

pytestmark = pytest.mark.anyio


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def client(settings: Settings, sleep: RecordingSleep):  # type: ignore[no-untyped-def]
    async with CutoutClient(settings, retry=RetryPolicy(attempts=4), sleep=sleep, jitter=lambda: 0.5) as c:
        yield c


async def test_submit_video_sends_documented_request(client: CutoutClient, upstream: respx.MockRouter) -> None:
    route = upstream.post("/api/v2/imageToVideo/generate").respond(json=envelope(700842286474565))
    job_id = await client.submit_video("https://img.example.com/cat.jpg", "the cat blinks")
    assert job_id == 700842286474565
    request = route.calls.last.request
    assert request.headers["APIKEY"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"imageUrl": "https://img.example.com/cat.jpg", "prompt": "the cat blinks"}


async def test_submit_video_without_prompt_omits_it(client: CutoutClient, upstream: respx.MockRouter) -> None:
    route = upstream.post("/api/v2/imageToVideo/generate").respond(json=envelope(1))
    await client.submit_video("https://img.example.com/cat.jpg", None)
    assert json.loads(route.calls.last.request.content) == {"imageUrl": "https://img.example.com/cat.jpg"}


async def test_get_video_reads_job_by_id(client: CutoutClient, upstream: respx.MockRouter) -> None:
    route = upstream.get("/api/v2/imageToVideo/getResult").respond(json=envelope(video_job(status=1)))
    job = await client.get_video(700842286474565)
    assert route.calls.last.request.url.params["id"] == "700842286474565"
    assert route.calls.last.request.headers["APIKEY"] == API_KEY
    assert job.status == 1
    assert job.result_url == "https://cdn.example.com/v.mp4"
    assert job.cover == "https://cdn.example.com/c.jpg"


async def test_edit_image_sends_documented_body(client: CutoutClient, upstream: respx.MockRouter) -> None:
    result = {
        "id": 789012345678901,
        "userId": 657890123456789,
        "imageUrl": "https://cdn.example.com/edit.jpg",
        "prompt": "Remove the background",
        "model": "qwen-image-edit-plus",
        "aspectRatios": "original",
        "referenceImageUrl": ["https://img.example.com/a.jpg"],
        "status": 1,
        "failReason": None,
        "deleted": 0,
        "duration": "11.43",
        "createdAt": 1763547221159,
    }
    route = upstream.post("/api/v1/image/edit").respond(json=envelope(result))
    edit = await client.edit_image(
        "Remove the background", "qwen-image-edit-plus", "original", ["https://img.example.com/a.jpg"]
    )
    assert json.loads(route.calls.last.request.content) == {
        "prompt": "Remove the background",
        "model": "qwen-image-edit-plus",
        "aspectRatios": "original",
        "imageUrl": ["https://img.example.com/a.jpg"],
    }
    assert edit.image_url == "https://cdn.example.com/edit.jpg"
    assert edit.duration == pytest.approx(11.43)


@pytest.mark.parametrize(
    ("code", "msg", "error_type", "words"),
    [
        (
            9011,
            "Image contains inappropriate content, cannot be processed.",
            errors.ContentRejectedError,
            "inappropriate",
        ),
        (1001, "The server is abnormal. Please contact us.", errors.ServiceError, "server problem"),
        (4002, "No results were found for the current ID.", errors.JobNotFoundError, "no job with this id"),
        (1001, "Insufficient balance", errors.InsufficientCreditsError, "too few credits"),
        (7777, "Something else", errors.RejectedError, "code 7777"),
    ],
)
async def test_documented_codes_map_to_errors(
    client: CutoutClient,
    upstream: respx.MockRouter,
    code: int,
    msg: str,
    error_type: type[errors.UpstreamError],
    words: str,
) -> None:
    upstream.post("/api/v1/image/edit").respond(json=envelope(None, code=code, msg=msg))
    with pytest.raises(error_type) as caught:
        await client.edit_image("p", "gpt-image-1", "1:1", ["https://img.example.com/a.jpg"])
    assert words in str(caught.value)
    assert caught.value.code == code
    assert "req-0123456789abcdef" in str(caught.value), "the request id is kept for support"


@pytest.mark.parametrize(
    ("response", "error_type", "words"),
    [
        (
            httpx.Response(401, json=envelope(None, code=401, msg="bad key")),
            errors.AuthenticationError,
            "CUTOUT_API_KEY",
        ),
        (httpx.Response(403, text="Forbidden"), errors.AuthenticationError, "refused the API key"),
        (httpx.Response(429, headers={"Retry-After": "3"}), errors.RateLimitedError, "rate limiting"),
        (httpx.Response(503, text="<html>down</html>"), errors.ServiceError, "HTTP 503"),
        (httpx.Response(404, text="not here"), errors.RejectedError, "HTTP 404"),
        (httpx.Response(200, text="<html>oops</html>"), errors.MalformedResponseError, "not JSON"),
        (httpx.Response(200, json={"unexpected": True}), errors.MalformedResponseError, "cannot read"),
    ],
)
async def test_http_failures_map_to_errors(
    settings: Settings,
    upstream: respx.MockRouter,
    response: httpx.Response,
    error_type: type[errors.CutoutError],
    words: str,
) -> None:
    upstream.post("/api/v2/imageToVideo/generate").mock(return_value=response)
    async with CutoutClient(settings, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(error_type) as caught:
            await client.submit_video("https://img.example.com/cat.jpg", None)
    assert words in str(caught.value)


async def test_missing_job_id_in_answer_is_malformed(client: CutoutClient, upstream: respx.MockRouter) -> None:
    upstream.post("/api/v2/imageToVideo/generate").respond(json=envelope(None))
    with pytest.raises(errors.MalformedResponseError):
        await client.submit_video("https://img.example.com/cat.jpg", None)


async def test_reads_retry_transient_failures_with_backoff(
    client: CutoutClient, upstream: respx.MockRouter, sleep: RecordingSleep
) -> None:
    route = upstream.get("/api/v2/imageToVideo/getResult").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=envelope(video_job(status=1))),
        ]
    )
    job = await client.get_video(5)
    assert job.status == 1
    assert route.call_count == 4
    assert sleep.delays == [0.25, 0.5, 1.0], "full jitter (0.5 here) of 0.5 s doubling"


async def test_reads_give_up_after_the_bounded_attempts(
    client: CutoutClient, upstream: respx.MockRouter, sleep: RecordingSleep
) -> None:
    route = upstream.get("/api/v2/imageToVideo/getResult").respond(500)
    with pytest.raises(errors.ServiceError):
        await client.get_video(5)
    assert route.call_count == 4
    assert len(sleep.delays) == 3


async def test_reads_honour_a_bounded_retry_after(
    client: CutoutClient, upstream: respx.MockRouter, sleep: RecordingSleep
) -> None:
    upstream.get("/api/v2/imageToVideo/getResult").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(429, headers={"Retry-After": "86400"}),
            httpx.Response(200, json=envelope(video_job())),
        ]
    )
    await client.get_video(5)
    assert sleep.delays == [2.0, RetryPolicy().max_retry_after]


async def test_reads_do_not_retry_a_definite_answer(client: CutoutClient, upstream: respx.MockRouter) -> None:
    route = upstream.get("/api/v2/imageToVideo/getResult").respond(json=envelope(None, code=4002, msg="none"))
    with pytest.raises(errors.JobNotFoundError):
        await client.get_video(5)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(200, text="garbage"),
    ],
    ids=["read-timeout", "dropped", "500", "502", "non-json"],
)
@pytest.mark.parametrize("path", ["/api/v2/imageToVideo/generate", "/api/v1/image/edit"])
async def test_paid_posts_are_never_resent_once_they_may_have_arrived(
    client: CutoutClient, upstream: respx.MockRouter, failure: object, path: str
) -> None:
    route = upstream.post(path).mock(side_effect=[failure, httpx.Response(200, json=envelope(1))])
    if path.endswith("generate"):
        call = client.submit_video("https://img.example.com/cat.jpg", None)
    else:
        call = client.edit_image("p", "gpt-image-1", "1:1", ["https://img.example.com/a.jpg"])
    with pytest.raises(errors.CutoutError):
        await call
    assert route.call_count == 1, "a second send could charge twice"


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("no route")], ids=["refused", "connect-timeout"]
)
async def test_paid_post_is_resent_when_it_never_left(
    client: CutoutClient, upstream: respx.MockRouter, failure: Exception
) -> None:
    route = upstream.post("/api/v2/imageToVideo/generate").mock(
        side_effect=[failure, httpx.Response(200, json=envelope(42))]
    )
    assert await client.submit_video("https://img.example.com/cat.jpg", None) == 42
    assert route.call_count == 2


async def test_missing_key_fails_before_any_request(upstream: respx.MockRouter) -> None:
    route = upstream.post("/api/v2/imageToVideo/generate").respond(json=envelope(1))
    async with CutoutClient(Settings(base_url="https://api.cutout.test")) as client:
        with pytest.raises(errors.MissingApiKeyError, match="CUTOUT_API_KEY"):
            await client.submit_video("https://img.example.com/cat.jpg", None)
    assert route.call_count == 0


async def test_errors_never_contain_the_key(client: CutoutClient, upstream: respx.MockRouter) -> None:
    upstream.get("/api/v2/imageToVideo/getResult").mock(side_effect=httpx.ConnectError(f"boom {API_KEY}"))
    with pytest.raises(errors.CutoutError) as caught:
        await client.get_video(5)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value)
    assert caught.value.__cause__ is None


async def test_idle_connections_are_dropped_before_common_servers_close_them() -> None:
    # uvicorn and Node close idle keep-alive connections after 5 s, gunicorn after 2 s: reusing one at
    # that moment fails a paid POST that cannot be retried.
    async with CutoutClient(Settings(base_url="https://api.cutout.test")) as client:
        expiry = client.connection_limits.keepalive_expiry
        assert expiry is not None
        assert expiry < 2


def pool_ssl_context(transport: object) -> ssl.SSLContext:
    """The TLS context an httpx transport's connection pool opens connections with (httpx is pinned)."""
    context = transport._pool._ssl_context  # type: ignore[attr-defined]
    assert isinstance(context, ssl.SSLContext)
    return context


async def test_every_http_client_verifies_tls_with_one_shared_context(settings: Settings) -> None:
    """The API, download and pre-flight clients load the CA bundle once, and all of them verify."""
    api = CutoutClient(settings.model_copy(update={"base_url": "https://www.cutout.pro"}))
    downloads = Downloads(None)
    backend = GuardedBackend(resolver=FakeDNS({}), inner=FakeNetwork({}))
    try:
        contexts = {
            id(pool_ssl_context(api._http._transport)),
            id(pool_ssl_context(downloads.fetcher.http._transport)),
            id(pool_ssl_context(guarded_transport(backend))),
        }
    finally:
        await api.aclose()
        await downloads.aclose()
    assert len(contexts) == 1
    shared = pool_ssl_context(guarded_transport(backend))
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname is True


async def test_a_200_answer_that_is_not_json_is_not_read_again(
    client: CutoutClient, upstream: respx.MockRouter
) -> None:
    route = upstream.get("/api/v2/imageToVideo/getResult").respond(200, text="<html>captive portal</html>")
    with pytest.raises(errors.MalformedResponseError, match="not JSON"):
        await client.get_video(5)
    assert route.call_count == 1


async def test_an_answer_declared_over_the_cap_is_refused_unread(
    client: CutoutClient, upstream: respx.MockRouter
) -> None:
    from cutout_mcp.upstream.client import MAX_ANSWER_BYTES

    big = b"{" + b" " * MAX_ANSWER_BYTES + b"}"
    route = upstream.get("/api/v2/imageToVideo/getResult").respond(200, content=big)
    with pytest.raises(errors.OversizedAnswerError, match="larger than 1 MiB"):
        await client.get_video(5)
    assert route.call_count == 1
