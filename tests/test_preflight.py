"""Pre-flight image checks and the SSRF guard: what is refused, and that nothing is charged for it.

The network is scripted (`netfakes`): fake DNS answers and canned HTTP
responses under the real guard, so resolve-check-connect runs as in
production and the tests see which address was connected to.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import anyio
import httpx
import pytest

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.inputs.netguard import BlockedAddressError, GuardedBackend, blocked_reason, guarded_transport
from cutout_mcp.core.inputs.preflight import HEAD_BYTES, ImageInspector, ImageRefusedError

from .conftest import API_KEY, BASE_URL, FakeClock, connect, envelope, video_job
from .netfakes import FakeDNS, FakeNetwork, chunked_response, http_response, image_bytes, redirect

pytestmark = pytest.mark.anyio

PUBLIC = "93.184.216.34"
OTHER_PUBLIC = "151.101.1.1"
PNG_OK = image_bytes(640, 480)


def inspector(dns: dict[str, Any], sites: dict[str, Any], **kwargs: Any) -> tuple[ImageInspector, FakeNetwork]:
    network = FakeNetwork(sites)
    return ImageInspector(resolver=FakeDNS(dns), network=network, **kwargs), network


async def refusal(check: Any) -> str:
    with pytest.raises(ImageRefusedError) as caught:
        await check
    return str(caught.value)


# --- address classes ------------------------------------------------------------

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.9.9.9", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.8", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.10", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("::ffff:127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
    ("::ffff:169.254.169.254", "cloud metadata (IPv4 169.254.169.254 inside IPv6)"),
    ("::ffff:10.0.0.1", "private (IPv4 10.0.0.1 inside IPv6)"),
    ("2002:7f00:1::", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # 6to4
    ("2002:a9fe:a9fe::", "cloud metadata (IPv4 169.254.169.254 inside IPv6)"),
    ("64:ff9b::7f00:1", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # NAT64
    ("64:ff9b::a00:1", "private (IPv4 10.0.0.1 inside IPv6)"),
    ("::127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # IPv4-compatible
    ("64:ff9b:1::1", "NAT64 local-use"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnel"),
    ("fec0::1", "site-local"),
    ("192.0.2.10", "special-purpose (not publicly routable)"),
    ("198.18.0.1", "special-purpose (not publicly routable)"),
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_every_non_public_address_class_is_named(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


async def test_the_guarded_backend_makes_every_connection() -> None:
    """The seam with httpx: guarded_transport swaps the transport's pool, so this fails if httpx stops using it."""
    network = FakeNetwork({PUBLIC: http_response(b"ok", content_type="text/plain")})
    backend = GuardedBackend(resolver=FakeDNS({"cdn.example": [PUBLIC]}), inner=network)
    async with httpx.AsyncClient(transport=guarded_transport(backend)) as http:
        response = await http.get("http://cdn.example/x")
        with pytest.raises(BlockedAddressError):
            await http.get("http://127.0.0.1/x")
    assert response.text == "ok"
    assert network.connections == [(PUBLIC, 80)]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
async def test_a_host_resolving_to_a_blocked_address_is_never_connected(address: str, reason: str) -> None:
    checker, network = inspector({"evil.example": [address]}, {address: http_response(PNG_OK)})
    message = await refusal(checker.check_video_image("https://evil.example/cat.png"))
    assert reason in message
    assert "no credits spent" in message
    assert network.connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://[::1]:8080/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[fd00:ec2::254]/",
        "http://10.1.2.3/x.png",
    ],
)
async def test_literal_blocked_addresses_are_refused_without_a_lookup(url: str) -> None:
    dns = FakeDNS({})
    network = FakeNetwork({})
    checker = ImageInspector(resolver=dns, network=network)
    await refusal(checker.check_video_image(url))
    assert dns.lookups == []
    assert network.connections == []


async def test_any_blocked_answer_among_several_refuses() -> None:
    checker, network = inspector({"mixed.example": [PUBLIC, "10.0.0.1"]}, {PUBLIC: http_response(PNG_OK)})
    assert "private" in await refusal(checker.check_video_image("https://mixed.example/a.png"))
    assert network.connections == []


async def test_dns_rebinding_connects_to_the_address_that_was_checked() -> None:
    dns = FakeDNS({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    network = FakeNetwork({PUBLIC: http_response(PNG_OK), "127.0.0.1": http_response(b"internal")})
    checker = ImageInspector(resolver=dns, network=network)
    facts = await checker.check_video_image("https://rebind.example/a.png")
    assert (facts.width, facts.height) == (640, 480)
    assert network.connections == [(PUBLIC, 443)]
    assert dns.lookups == ["rebind.example"], "one lookup per connection: check and connect use the same answer"
    # The next connection resolves again, gets the private answer, and is refused.
    assert "loopback" in await refusal(checker.check_video_image("https://rebind.example/a.png"))
    assert network.connections == [(PUBLIC, 443)]


# --- redirects ------------------------------------------------------------------


async def test_a_redirect_to_a_blocked_address_is_refused() -> None:
    checker, network = inspector(
        {"cdn.example": [PUBLIC], "inside.example": ["192.168.0.5"]},
        {PUBLIC: redirect("http://inside.example/secret.png"), "192.168.0.5": http_response(PNG_OK)},
    )
    assert "private" in await refusal(checker.check_video_image("https://cdn.example/a.png"))
    assert network.connections == [(PUBLIC, 443)]


async def test_a_redirect_to_the_metadata_address_is_refused() -> None:
    checker, network = inspector({"cdn.example": [PUBLIC]}, {PUBLIC: redirect("http://169.254.169.254/latest/")})
    assert "cloud metadata" in await refusal(checker.check_video_image("https://cdn.example/a.png"))
    assert network.connections == [(PUBLIC, 443)]


async def test_redirects_to_public_hosts_are_followed_up_to_three() -> None:
    checker, network = inspector(
        {"a.example": [PUBLIC], "b.example": [OTHER_PUBLIC]},
        {PUBLIC: redirect("https://b.example/final.png", "301 Moved Permanently"), OTHER_PUBLIC: http_response(PNG_OK)},
    )
    facts = await checker.check_video_image("https://a.example/a.png")
    assert facts.format == "PNG"
    assert network.connections == [(PUBLIC, 443), (OTHER_PUBLIC, 443)]


async def test_a_fourth_redirect_is_refused() -> None:
    hops = [redirect(f"https://a.example/{n}") for n in range(5)]
    checker, network = inspector({"a.example": [PUBLIC]}, {PUBLIC: hops[0]})
    assert "more than 3 redirects" in await refusal(checker.check_video_image("https://a.example/0"))
    assert len(network.connections) == 4


async def test_a_redirect_to_another_scheme_is_refused() -> None:
    checker, _ = inspector({"a.example": [PUBLIC]}, {PUBLIC: redirect("file:///etc/passwd")})
    assert "non-http(s)" in await refusal(checker.check_video_image("https://a.example/a.png"))


# --- what cutout.pro would refuse -----------------------------------------------


async def video_check(body: bytes | list[bytes]) -> str | tuple[int | None, int | None]:
    checker, _ = inspector({"img.example": [PUBLIC]}, {PUBLIC: body})
    try:
        facts = await checker.check_video_image("https://img.example/a")
    except ImageRefusedError as exc:
        return str(exc)
    return facts.width, facts.height


async def test_an_html_page_is_not_an_image() -> None:
    message = await video_check(http_response(b"<!doctype html><title>Login</title>", content_type="text/html"))
    assert "image_url" in str(message)
    assert "not an image" in str(message)
    assert "text/html" in str(message)


async def test_a_declared_size_over_10_mb_is_refused_without_reading_the_body() -> None:
    message = await video_check(http_response(PNG_OK, length=catalog.MAX_IMAGE_BYTES + 1))
    assert "10 MB" in str(message)


async def test_a_size_over_10_mb_from_content_range_is_refused() -> None:
    total = catalog.MAX_IMAGE_BYTES + 5
    body = http_response(
        PNG_OK,
        status="206 Partial Content",
        headers={"Content-Range": f"bytes 0-{len(PNG_OK) - 1}/{total}"},
    )
    assert "10 MB" in str(await video_check(body))


async def test_an_undeclared_size_is_counted_up_to_the_limit() -> None:
    chunk = b"\0" * (1024 * 1024)
    over = chunked_response([PNG_OK] + [chunk] * 11)
    assert "over 10,485,760 bytes" in str(await video_check(over))
    under = chunked_response([PNG_OK, chunk])
    assert await video_check(under) == (640, 480)


@pytest.mark.parametrize(
    ("size", "fits"),
    [((299, 800), False), ((800, 299), False), ((300, 300), True), ((6000, 400), True), ((6001, 400), False)],
)
async def test_video_sides_must_be_between_300_and_6000_px(size: tuple[int, int], fits: bool) -> None:
    outcome = await video_check(http_response(image_bytes(*size)))
    if fits:
        assert outcome == size
    else:
        assert "between 300 and 6000 px" in str(outcome)
        assert f"{size[0]}×{size[1]}" in str(outcome)


async def test_only_the_head_of_a_large_image_is_read() -> None:
    big = image_bytes(1200, 900, "JPEG") + b"\0" * (2 * HEAD_BYTES)
    reads = [http_response(b"", length=len(big), content_type="image/jpeg")]
    reads += [big[i : i + 4096] for i in range(0, len(big), 4096)]
    checker, _ = inspector({"img.example": [PUBLIC]}, {PUBLIC: reads})
    facts = await checker.check_video_image("https://img.example/a.jpg")
    assert (facts.format, facts.width, facts.height) == ("JPEG", 1200, 900)
    assert facts.size_bytes == len(big)


async def edit_check(bodies: list[bytes], model: str = "gpt-image-1") -> str | None:
    hosts = {f"img{n}.example": [f"93.184.216.{n + 1}"] for n in range(len(bodies))}
    sites = {f"93.184.216.{n + 1}": body for n, body in enumerate(bodies)}
    checker, _ = inspector(hosts, sites)
    urls = [f"https://img{n}.example/a" for n in range(len(bodies))]
    try:
        await checker.check_edit_images(urls, catalog.edit_model(model))
    except ImageRefusedError as exc:
        return str(exc)
    return None


async def test_edit_takes_jpeg_and_png_only() -> None:
    jpeg = http_response(image_bytes(400, 400, "JPEG"), content_type="image/jpeg")
    gif = http_response(image_bytes(400, 400, "GIF"), content_type="image/gif")
    assert await edit_check([jpeg, http_response(PNG_OK)]) is None
    message = await edit_check([jpeg, gif])
    assert message is not None
    assert "image_urls[1]" in message
    assert "GIF" in message
    assert "only JPEG or PNG" in message


@pytest.mark.parametrize(
    ("size", "broken"),
    [
        ((1024, 900), None),
        ((900, 900), "fewer than 921,600"),
        ((3000, 310), "aspect ratio outside 1/3..3"),
        ((6100, 400), "over 6000 px"),
        ((92160, 14), "14 px or less"),
    ],
)
async def test_seedream_rules_are_checked(size: tuple[int, int], broken: str | None) -> None:
    message = await edit_check([http_response(image_bytes(*size))], model="seedream-4.0")
    if broken is None:
        assert message is None
        assert await edit_check([http_response(image_bytes(*size))], model="gpt-image-1") is None
    else:
        assert message is not None
        assert broken in message
        assert "seedream-4.0 needs" in message


# --- unreachable images refuse the paid call -------------------------------------


async def test_an_unknown_host_refuses_with_a_clear_message() -> None:
    checker, _ = inspector({}, {})
    message = await refusal(checker.check_video_image("https://nowhere.example/a.png"))
    assert "could not be fetched" in message
    assert "nowhere.example" in message
    assert "no credits were spent" in message


async def test_a_404_refuses() -> None:
    checker, _ = inspector({"img.example": [PUBLIC]}, {PUBLIC: http_response(b"gone", status="404 Not Found")})
    assert "HTTP 404" in await refusal(checker.check_video_image("https://img.example/a.png"))


async def test_a_host_that_never_answers_is_given_up_within_the_budget() -> None:
    async def hanging(host: str, port: int) -> list[str]:
        await anyio.Event().wait()
        return []

    checker = ImageInspector(resolver=hanging, network=FakeNetwork({}), timeout=0.05)
    assert "did not answer within 0.05 s" in await refusal(checker.check_video_image("https://slow.example/a"))


async def test_the_sandbox_origin_is_reachable_only_when_trusted() -> None:
    sites = {"127.0.0.1": http_response(PNG_OK)}
    untrusted = ImageInspector(resolver=FakeDNS({}), network=FakeNetwork(sites))
    assert "loopback" in await refusal(untrusted.check_video_image("http://127.0.0.1:8787/sample.png"))
    network = FakeNetwork(sites)
    trusted = ImageInspector(resolver=FakeDNS({}), network=network, trusted_origins=["http://127.0.0.1:8787"])
    assert (await trusted.check_video_image("http://127.0.0.1:8787/sample.png")).format == "PNG"
    assert "loopback" in await refusal(trusted.check_video_image("http://127.0.0.1:9999/other.png"))
    assert network.connections == [("127.0.0.1", 8787)]


async def test_a_trusted_origin_may_also_be_on_loopback_and_nowhere_else_private() -> None:
    """The staging bucket's origin: a loopback MinIO is reached, a public bucket is as before, but being
    trusted opens no private or metadata address, and another port of the same host stays closed."""
    dns = {
        "minio.test": ["127.0.0.1"],
        "bucket.test": [PUBLIC],
        "lan.test": ["10.0.0.5"],
        "imds.test": ["169.254.169.254"],
    }
    sites = {"127.0.0.1": http_response(PNG_OK), PUBLIC: http_response(PNG_OK), "10.0.0.5": http_response(PNG_OK)}
    trusted = ["http://minio.test:9000", "https://bucket.test", "http://lan.test:9000", "http://imds.test"]
    checker, network = inspector(dns, sites, trusted_origins=trusted)
    assert (await checker.check_video_image("http://minio.test:9000/b/k.png?X-Amz-Signature=1")).format == "PNG"
    assert (await checker.check_video_image("https://bucket.test/k.png")).format == "PNG"
    assert "private" in await refusal(checker.check_video_image("http://lan.test:9000/b/k.png"))
    assert "cloud metadata" in await refusal(checker.check_video_image("http://imds.test/latest/meta-data"))
    assert "loopback" in await refusal(checker.check_video_image("http://minio.test:9001/b/k.png"))
    assert network.connections == [("127.0.0.1", 9000), (PUBLIC, 443)]


# --- through the tools: a refused image is never charged --------------------------


class Upstream:
    """Records every request the cutout.pro client sends."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/generate"):
            return httpx.Response(200, json=envelope(700842286474565))
        return httpx.Response(200, json=envelope(video_job(status=1)))


@pytest.fixture
def preflight_settings() -> Settings:
    return Settings(api_key=API_KEY, base_url=BASE_URL, wait_seconds=0, preflight=True)


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("generate_video", {"image_url": "http://127.0.0.1/cat.png"}, "loopback"),
        ("generate_video", {"image_url": "http://169.254.169.254/latest/meta-data/"}, "cloud metadata"),
        ("generate_video", {"image_url": "https://intranet.example/cat.png"}, "private"),
        ("generate_video", {"image_url": "https://small.example/cat.png"}, "between 300 and 6000 px"),
        ("edit_image", {"prompt": "blue", "image_urls": ["https://intranet.example/a.png"]}, "private"),
        ("edit_image", {"prompt": "blue", "image_urls": ["https://anim.example/a.gif"]}, "only JPEG or PNG"),
        (
            "edit_image",
            {"prompt": "blue", "image_urls": ["https://small.example/a.png"], "model": "seedream-4.0"},
            "seedream-4.0 needs",
        ),
    ],
)
async def test_a_refused_image_makes_no_cutout_request(
    preflight_settings: Settings, mode: str, clock: FakeClock, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    checker, _ = inspector(
        {"intranet.example": ["10.20.30.40"], "small.example": [PUBLIC], "anim.example": [OTHER_PUBLIC]},
        {PUBLIC: http_response(image_bytes(200, 200)), OTHER_PUBLIC: http_response(image_bytes(400, 400, "GIF"))},
    )
    upstream = Upstream()
    async with connect(
        preflight_settings, mode, clock, http_transport=httpx.MockTransport(upstream), inspector=checker
    ) as client:
        result = await client.call_tool(tool, arguments)
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert result.is_error is True
    assert expected in text
    assert "Traceback" not in text
    assert upstream.requests == [], "nothing may be sent to cutout.pro (or charged) for a refused image"


async def test_a_good_image_goes_through_to_cutout(preflight_settings: Settings, mode: str, clock: FakeClock) -> None:
    checker, network = inspector({"img.example": [PUBLIC]}, {PUBLIC: http_response(PNG_OK)})
    upstream = Upstream()
    async with connect(
        preflight_settings, mode, clock, http_transport=httpx.MockTransport(upstream), inspector=checker
    ) as client:
        result = await client.call_tool("generate_video", {"image_url": "https://img.example/cat.png"})
    assert result.is_error is False
    assert network.connections == [(PUBLIC, 443)]
    assert upstream.requests[0].url.path == "/api/v2/imageToVideo/generate"


async def test_preflight_off_fetches_nothing(mode: str, clock: FakeClock) -> None:
    settings = Settings.load({"CUTOUT_PREFLIGHT": "off"}, api_key=API_KEY, base_url=BASE_URL, wait_seconds=0)
    assert settings.preflight is False
    upstream = Upstream()
    async with connect(settings, mode, clock, http_transport=httpx.MockTransport(upstream)) as client:
        result = await client.call_tool("generate_video", {"image_url": "https://img.example/cat.png"})
    assert result.is_error is False
    assert len(upstream.requests) >= 1


async def test_a_loopback_base_url_does_not_open_its_origin(mode: str, clock: FakeClock) -> None:
    """Pointing CUTOUT_BASE_URL at a local proxy must not let a model-chosen URL reach that proxy."""
    proxy = "http://127.0.0.1:3128"
    settings = Settings(api_key=API_KEY, base_url=proxy, wait_seconds=0, preflight=True)
    upstream = Upstream()
    async with connect(settings, mode, clock, http_transport=httpx.MockTransport(upstream)) as client:
        video = await client.call_tool("generate_video", {"image_url": f"{proxy}/admin.png"})
        edit = await client.call_tool("edit_image", {"prompt": "blue", "image_urls": [f"{proxy}/admin.png"]})
    assert video.is_error is True
    assert "127.0.0.1 is a loopback address" in " ".join(getattr(b, "text", "") for b in video.content)
    assert edit.is_error is True
    assert "https" in " ".join(getattr(b, "text", "") for b in edit.content)
    assert upstream.requests == []


async def test_the_sandbox_sample_passes_every_models_preflight() -> None:
    """The image the sandbox instructions offer is accepted for a video and by every edit model."""
    from cutout_mcp.core.inputs.preflight import open_inspector
    from cutout_mcp.sandbox import SandboxConfig, run_sandbox
    from cutout_mcp.sandbox_mode import sample_image_url, sandbox_instructions

    async with run_sandbox(SandboxConfig(fetch_remote=False)) as sandbox:
        settings = Settings.load({"CUTOUT_SANDBOX": "1", "CUTOUT_BASE_URL": sandbox.base_url})
        sample = sample_image_url(settings.base_url)
        for bucket in (False, True):  # the URL stands alone: a whitespace split or an auto-link gets it exactly
            assert sample in sandbox_instructions(settings.base_url, bucket=bucket).split()
        async with open_inspector(settings) as checker:
            assert checker is not None
            facts = await checker.check_video_image(sample)
            for model in catalog.EDIT_MODELS:
                await checker.check_edit_images([sample], model)
    assert facts.format == "JPEG"
    assert facts.width is not None
    assert facts.height is not None
    assert facts.width * facts.height >= catalog.SEEDREAM_SIZE_RULES.min_pixels
