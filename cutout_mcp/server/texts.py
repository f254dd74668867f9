"""The words an assistant reads: the server's instructions and each tool's description.

Prices and limits come from `catalog`, so what the assistant is told matches what is checked and
charged.
"""

from __future__ import annotations

from cutout_mcp import catalog
from cutout_mcp.core.inputs.uploads import UPLOAD_SECONDS


def _edit_prices() -> str:
    """'4 credits, 15 with gemini-3-pro-image-preview': the common price, then the exceptions."""
    prices = [m.credits for m in catalog.EDIT_MODELS]
    common = max(set(prices), key=prices.count)
    others = [f"{m.credits} with {m.name}" for m in catalog.EDIT_MODELS if m.credits != common]
    return ", ".join([f"{common} credits", *others])


INSTRUCTIONS = f"""\
cutout-mcp turns still images into short videos and edits images with cutout.pro. Every paid call \
spends the user's cutout.pro credits, so call paid tools only when the user asked for the result.

- edit_image: edit {catalog.MIN_EDIT_IMAGES}-{catalog.MAX_EDIT_IMAGES} reference images (JPEG/PNG) with a \
prompt; answers with the edited image's URL. Costs {_edit_prices()}.
- generate_video: start an image-to-video job ({catalog.VIDEO_CREDITS} credits) and wait a bounded time \
for it. Videos take minutes, so the result is often still 'queued' or 'processing'.
- get_video_result: free. Check on a video job by its id; with wait_seconds > 0 it waits for it.
- list_video_jobs: free. The user's video jobs, newest first, with credits spent: use it to find a job \
started in an earlier conversation.
- get_upload_url: free. A URL to PUT an image file to (when the server has a staging bucket), and the \
image_url to pass to the paid tools afterwards: for a file this server cannot read itself.

Images: pass a public https URL, or the user's file as it is: an absolute local path (~/Pictures/cat.jpg, \
/Users/me/cat.png, C:\\Users\\me\\cat.jpg) or file:// URI, a data:image/jpeg|png;base64 URI, or the \
image_url that get_upload_url returned after the file was uploaded (for a server on another machine). \
The server checks a local image (JPEG or PNG, at most {catalog.MAX_IMAGE_MB} MB) and hands it to cutout.pro \
itself; there is no need to host it anywhere.

Resuming: a job that is not finished when generate_video returns keeps running at cutout.pro. Keep its \
id and call get_video_result(id=..., wait_seconds=...) until status is 'succeeded' (then give the user \
result_url) or 'failed'. An identical generate_video call while the job runs returns the same job at no \
cost; force_new=true pays for another one, so use it only when the user asks for a second video.
"""


def confirm_note(above: int | None) -> str:
    """Told to the assistant when CUTOUT_CONFIRM_SPEND is on, so a refusal is not retried in a loop."""
    if above is None:
        return ""
    which = "every paid call" if above == 0 else f"every paid call costing more than {above} credits"
    return (
        f"\nThe user is asked to confirm {which} before anything is spent. If they decline, or their client "
        "cannot ask, the call fails and nothing is charged: do not call it again unless the user asks, and "
        "tell them how to change CUTOUT_CONFIRM_SPEND if the error says so.\n"
    )


def limits_note(limited: bool) -> str:
    """Told to the assistant when allowances, a session cap or a rate are set, so a refusal is understood."""
    if not limited:
        return ""
    return (
        "\nEach caller has limits here: credits per period, per session and paid calls per minute. A paid call "
        "past one fails before anything is sent or charged, naming the limit and when it renews; tell the user "
        "instead of retrying. cutout://credits and list_video_jobs show what is left.\n"
    )


GENERATE_VIDEO = (
    f"Turn a still image into a short video with cutout.pro. COSTS {catalog.VIDEO_CREDITS} CREDITS "
    "per call, whatever the outcome. Submits the job, then waits up to wait_seconds for it while "
    "reporting progress; returns the job, finished or not. An unfinished job keeps running: "
    "resume it with get_video_result(id). Do not call this again for the same request: while an "
    "identical job (same image_url and prompt) is unfinished, that job is returned instead, free; "
    "force_new=true pays for a new one anyway. A client "
    "that supports MCP tasks gets a task instead, which waits for the finished video. A finished "
    "video usually comes with a contact sheet (four frames in one image) so you can check what was made."
)

GET_VIDEO_RESULT = (
    "Read a video job started by generate_video (free). With wait_seconds > 0, waits up to that "
    "long for it to finish while reporting progress. Returns the job; when status is 'succeeded', "
    "result_url is the video, usually with a contact sheet (four frames in one image) showing it."
)

EDIT_IMAGE = (
    f"Edit {catalog.MIN_EDIT_IMAGES} to {catalog.MAX_EDIT_IMAGES} reference images with a prompt using one of "
    "cutout.pro's models, and return the edited image's URL. COSTS CREDITS per call: "
    + "; ".join(f"{m.name} {m.credits}" for m in catalog.EDIT_MODELS)
    + ". Images are public HTTPS URLs or local files (a path, a data: URI or an upload) of "
    + " or ".join(catalog.EDIT_IMAGE_FORMATS)
    + " images, at most "
    + "; ".join(f"{m.max_images} for {m.name}" for m in catalog.EDIT_MODELS if m.max_images < catalog.MAX_EDIT_IMAGES)
    + "."
    + "".join(f" {m.name} also needs {m.size_rules.describe()}." for m in catalog.EDIT_MODELS if m.size_rules)
)

LIST_VIDEO_JOBS = (
    "List the video jobs you started on this server, newest first, from its job ledger (free; "
    "nothing is sent to cutout.pro). Status is as of each job's last check: call get_video_result(id) "
    "for the current state. Use it to find a job from an earlier conversation. Also reports the "
    "credits spent and, if a budget is set, what remains."
)

GET_UPLOAD_URL = (
    "Get a URL to upload an image file to, for generate_video or edit_image (free; nothing is sent to "
    "cutout.pro). Use it when the image is a file this server cannot read (it runs on another machine): "
    f"PUT the file's bytes to upload_url within {UPLOAD_SECONDS // 60} minutes (e.g. curl -T cat.jpg -H 'Content-Type: "
    "image/jpeg' '<upload_url>'), then pass image_url (upload:...) to the paid tool. The image must be a "
    f"JPEG or PNG of at most {catalog.MAX_IMAGE_MB} MB; it is checked when used, before anything is charged. "
    "Works when the server has a staging bucket (CUTOUT_STAGING_URL) or runs in sandbox mode."
)

WAIT_SECONDS = (
    "How long to wait for the job before returning it as it stands. Many clients abandon a "
    "call after about 60 s, so keep it below that."
)

IMAGE_FORMS = (
    "an absolute local path to the file (/…, ~/…, C:\\…) or a file:// URI, a data:image/jpeg|png;base64 URI, "
    "or the upload:… image_url that get_upload_url returned"
)

VIDEO_IMAGE_URL = (
    f"The source image: a public http(s) URL, or {IMAGE_FORMS}. JPEG or PNG, sides between "
    f"{catalog.VIDEO_MIN_SIDE_PX} and {catalog.VIDEO_MAX_SIDE_PX} px, at most "
    f"{catalog.MAX_IMAGE_MB} MB."
)

EDIT_IMAGE_URLS = (
    f"The reference images ({' or '.join(catalog.EDIT_IMAGE_FORMATS)}, at most {catalog.MAX_IMAGE_MB} MB each): "
    f"each a public https URL, or {IMAGE_FORMS}."
)


def task_submitted(job_id: int, credits: int) -> str:
    cost = f"{credits} credits" if credits else "nothing charged: an identical job was already running"
    return f"Video job {job_id} was submitted ({cost}); waiting for cutout.pro."


def task_resume_hint(job_id: int, next_step: str) -> str:
    return (
        f"Video job {job_id} itself cannot be cancelled at cutout.pro: it keeps running and its "
        f"credits are spent. {next_step}"
    )
