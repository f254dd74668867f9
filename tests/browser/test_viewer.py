"""The views, rendered by the official host side (AppBridge) in Chromium, fed by a real cutout-mcp.

Every test ends with `assert_clean()`: no CSP violation, no uncaught error, no console error and no
request to an origin the view's resource did not declare. Screenshots land in tests/browser/artifacts/.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import pytest
from PIL import Image

from .conftest import Shown, Viewing

pytestmark = pytest.mark.e2e

VIDEO_PLAYS = """() => {
  const v = document.querySelector('video');
  return v !== null && v.readyState >= 2 && v.currentTime > 0.2;
}"""


def wait_for_playing(shown: Shown, timeout: float = 30_000) -> dict[str, Any]:
    """Waits until the view's video has decoded frames and its time moves on; returns its state."""
    shown.view.wait_for_function(VIDEO_PLAYS, timeout=timeout)
    state: dict[str, Any] = shown.view.evaluate(
        """() => { const v = document.querySelector('video');
        return {src: v.currentSrc, poster: v.poster, loop: v.loop, controls: v.controls, muted: v.muted,
                readyState: v.readyState, time: v.currentTime, width: v.videoWidth}; }"""
    )
    shown.view.wait_for_function(f"() => document.querySelector('video').currentTime !== {state['time']}")
    return state


def images_loaded(shown: Shown, selector: str) -> list[dict[str, Any]]:
    shown.view.wait_for_function(
        f"() => {{ const all = [...document.querySelectorAll({selector!r})];"
        " return all.length > 0 && all.every(i => i.complete && i.naturalWidth > 0); }"
    )
    found: list[dict[str, Any]] = shown.view.evaluate(
        f"() => [...document.querySelectorAll({selector!r})].map(i => ({{src: i.currentSrc, width: i.naturalWidth}}))"
    )
    return found


def test_a_finished_video_plays_with_its_cover_size_id_and_links(viewing: Viewing) -> None:
    shown = viewing.show(
        "generate_video", {"image_url": viewing.sandbox["sample_image_url"], "prompt": "waves", "wait_seconds": 40}
    )
    job = shown.result["structuredContent"]
    assert job["status"] == "succeeded"

    video = wait_for_playing(shown)
    assert video["readyState"] >= 2
    assert video["width"] == job["width"]
    assert (video["src"], video["poster"]) == (job["result_url"], job["cover_url"])
    assert (video["loop"], video["controls"], video["muted"]) == (True, True, True)
    text = shown.view.inner_text("body")
    assert f"Video job {job['id']} · {job['width']}×{job['height']}" in text

    shown.view.click("button:text-is('Download')")
    shown.view.click("button:text-is('Open')")
    viewing.page.wait_for_function("() => host.log.downloads.length === 1 && host.log.openLinks.length === 1")
    log = viewing.log()
    assert log["downloads"] == [
        [{"type": "resource_link", "uri": job["result_url"], "name": f"{job['id']}.mp4", "mimeType": "video/mp4"}]
    ]
    assert log["openLinks"] == [job["result_url"]]
    assert log["viewCalls"] == []  # a finished job needs nothing more from the server
    frame_height = viewing.page.evaluate("() => document.querySelector('iframe.view').clientHeight")
    assert log["sizes"][-1] >= job["height"]  # the view asked for room for the video...
    assert frame_height == log["sizes"][-1]  # ...and the host gave it
    viewing.screenshot("video-finished")
    viewing.assert_clean()


def test_an_unfinished_job_is_watched_by_the_view_until_it_plays(viewing: Viewing) -> None:
    shown = viewing.show(
        "generate_video", {"image_url": viewing.sandbox["sample_image_url"], "prompt": "slowly", "wait_seconds": 0}
    )
    job = shown.result["structuredContent"]
    assert job["status"] == "queued"
    assert job["wait_number"] > 0
    shown.view.wait_for_selector("progress")
    assert f"{job['wait_number']} jobs ahead" in shown.view.inner_text("body")
    viewing.screenshot("video-watching")

    video = wait_for_playing(shown, timeout=60_000)
    assert str(job["id"]) in video["src"]
    states = shown.proxy.evaluate("() => window.viewEvents.states")
    assert any(re.search(r"Rendering: [1-9][0-9]?%", state) for state in states), states  # seen while it rendered
    calls = viewing.log()["viewCalls"]
    assert calls
    assert {c["name"] for c in calls} == {"get_video_result"}
    assert all(c["arguments"]["id"] == job["id"] and 0 < c["arguments"]["wait_seconds"] <= 20 for c in calls)
    viewing.screenshot("video-watched-then-playing")
    viewing.assert_clean()


def test_a_job_that_fails_while_watched_says_so(viewing: Viewing) -> None:
    shown = viewing.show(
        "generate_video",
        {"image_url": viewing.sandbox["sample_image_url"], "prompt": "sandbox:job-fails", "wait_seconds": 0},
    )
    job_id = shown.result["structuredContent"]["id"]
    shown.view.wait_for_selector("[role=alert]", timeout=60_000)
    alert = shown.view.inner_text("[role=alert]")
    assert f"Video job {job_id} failed at cutout.pro" in alert
    assert shown.view.query_selector("video") is None
    viewing.assert_clean()


def test_an_edit_shows_the_first_reference_beside_the_result(viewing: Viewing) -> None:
    sample = viewing.sandbox["sample_image_url"]
    shown = viewing.show("edit_image", {"prompt": "make it autumn", "image_urls": [sample, sample + "?second"]})
    edit = shown.result["structuredContent"]
    pictures = images_loaded(shown, ".compare img")
    assert [p["src"] for p in pictures] == [sample, edit["image_url"]]
    assert images_loaded(shown, ".thumbs img")[0]["src"] == sample + "?second"
    text = shown.view.inner_text("body")
    for shown_fact in (edit["model"], f"{edit['credits_charged']} credits", "make it autumn"):
        assert shown_fact in text
    viewing.screenshot("edit-before-after")
    viewing.assert_clean()


def test_the_gallery_lists_the_jobs_and_plays_the_one_chosen_with_the_keyboard(viewing: Viewing) -> None:
    made = viewing.show(
        "generate_video", {"image_url": viewing.sandbox["sample_image_url"], "prompt": "gallery", "wait_seconds": 40}
    )
    assert made.result["structuredContent"]["status"] == "succeeded"
    shown = viewing.show("list_video_jobs", {})
    jobs = shown.result["structuredContent"]["jobs"]
    cards = shown.view.query_selector_all("button.card")
    assert [c.get_attribute("data-job") for c in cards] == [str(j["id"]) for j in jobs]
    covers = images_loaded(shown, f'button.card[data-job="{made.result["structuredContent"]["id"]}"] img')
    assert covers[0]["src"] == made.result["structuredContent"]["cover_url"]
    viewing.screenshot("gallery")

    chosen = f'button.card[data-job="{made.result["structuredContent"]["id"]}"]'
    shown.view.focus(chosen)
    viewing.page.keyboard.press("Enter")
    video = wait_for_playing(shown)
    assert video["src"] == made.result["structuredContent"]["result_url"]
    assert viewing.log()["viewCalls"][-1] == {
        "name": "get_video_result",
        "arguments": {"id": made.result["structuredContent"]["id"], "wait_seconds": 0},
    }
    viewing.page.keyboard.press("Escape")
    shown.view.wait_for_selector("button.card")
    focused = shown.view.evaluate("() => document.activeElement.dataset.job")
    assert focused == str(made.result["structuredContent"]["id"])
    viewing.assert_clean()


def test_refreshing_the_gallery_lists_again_with_the_call_s_own_arguments(viewing: Viewing) -> None:
    shown = viewing.show("list_video_jobs", {"status": "succeeded", "limit": 2})
    before = [c.get_attribute("data-job") for c in shown.view.query_selector_all("button.card")]
    made = viewing.show(
        "generate_video", {"image_url": viewing.sandbox["sample_image_url"], "prompt": "later", "wait_seconds": 40}
    )
    new_id = str(made.result["structuredContent"]["id"])
    assert new_id not in before
    shown.view.click("button.refresh")
    shown.view.wait_for_selector(f'button.card[data-job="{new_id}"]')
    assert viewing.log()["viewCalls"] == [{"name": "list_video_jobs", "arguments": {"status": "succeeded", "limit": 2}}]
    assert len(shown.view.query_selector_all("button.card")) <= 2
    viewing.assert_clean()


def test_media_from_an_undeclared_origin_show_the_contact_sheet_and_say_why(viewing: Viewing) -> None:
    drawn = io.BytesIO()
    Image.new("RGB", (480, 180), (40, 120, 200)).save(drawn, format="JPEG")
    sheet = base64.b64encode(drawn.getvalue()).decode()
    job = {
        "id": 4242,
        "status": "succeeded",
        "percentage": 100,
        "wait_number": 0,
        "width": 480,
        "height": 360,
        "result_url": "https://media.example.net/v/4242.mp4",
        "cover_url": "https://media.example.net/c/4242.jpg",
        "credits_charged": 0,
        "message": "Video job 4242 is done.",
    }
    result = {
        "content": [{"type": "text", "text": "{}"}, {"type": "image", "data": sheet, "mimeType": "image/jpeg"}],
        "structuredContent": job,
    }
    shown = viewing.show("get_video_result", {"id": 4242}, result=result, theme="dark")
    stills = images_loaded(shown, "img.still")
    assert stills == [{"src": f"data:image/jpeg;base64,{sheet}", "width": 480}]
    assert shown.view.query_selector("video") is None
    why = shown.view.inner_text(".why")
    assert "https://media.example.net is not among the media origins" in why
    assert "CUTOUT_MEDIA_ORIGINS" in why
    shown.view.click("button:text-is('Open')")
    viewing.page.wait_for_function("() => host.log.openLinks.length === 1")
    assert viewing.log()["openLinks"] == [job["result_url"]]

    def background() -> list[int]:
        color = shown.view.evaluate("() => getComputedStyle(document.body).backgroundColor")
        return [int(part) for part in color[color.index("(") + 1 : color.index(")")].split(",")[:3]]

    assert sum(background()) < 150  # the host said dark
    viewing.page.evaluate(f"() => host.setTheme({shown.index}, 'light')")
    shown.view.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
    assert sum(background()) > 600
    viewing.screenshot("undeclared-origin")
    viewing.assert_clean()


def test_an_edit_from_elsewhere_shows_its_inline_preview_and_the_reference_s_label(viewing: Viewing) -> None:
    drawn = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 120, 40)).save(drawn, format="JPEG")
    preview = base64.b64encode(drawn.getvalue()).decode()
    edit = {
        "id": 77,
        "status": "succeeded",
        "image_url": "https://images.example.org/e/77.jpg",
        "model": "flux-kontext",
        "aspect_ratio": "original",
        "prompt": "paint it",
        "reference_image_urls": ["~/Pictures/cat.jpg", "upload:a1b2"],
        "credits_charged": 4,
        "message": "Edited.",
    }
    result = {
        "content": [{"type": "text", "text": "{}"}, {"type": "image", "data": preview, "mimeType": "image/jpeg"}],
        "structuredContent": edit,
    }
    shown = viewing.show("edit_image", {"prompt": "paint it", "image_urls": ["~/Pictures/cat.jpg"]}, result=result)
    assert images_loaded(shown, ".compare img") == [{"src": f"data:image/jpeg;base64,{preview}", "width": 320}]
    before = shown.view.inner_text(".compare figure:first-child")
    assert "~/Pictures/cat.jpg" in before
    assert "upload:a1b2" in shown.view.get_attribute(".thumbs .placeholder", "title")
    viewing.assert_clean()
