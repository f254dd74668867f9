// Videos: the player for a finished job, and the watcher that turns an unfinished job into one by
// calling get_video_result (free) through the host, each call waiting a bounded time.

// How long each get_video_result call may wait: short at first (the state and a pace to estimate from come
// quickly), then longer; a long queue moves slowly. Every wait is far under the host's bound on a call
// (60 s in the official host), and each call's end is one read of cutout.pro, so the view never polls faster.
function waitSeconds(job, checks) {
  if (checks < 2) return 5;
  return job.status === "queued" && job.wait_number >= 5 ? 20 : 10;
}
const MAX_FAILED_CHECKS = 4; // consecutive calls that reached no answer before the view stops watching

function sizeText(job) {
  return job.width && job.height ? `${job.width}×${job.height}` : "";
}

function videoCaption(job) {
  const parts = [h("strong", {}, `Video job ${job.id}`)];
  if (sizeText(job)) parts.push(` · ${sizeText(job)}`);
  if (job.credits_charged) parts.push(` · this call cost ${plural(job.credits_charged, "credit")}`);
  return h("figcaption", {}, parts, job.prompt ? h("span", { class: "prompt" }, job.prompt) : null);
}

// What stands in for the video when it cannot play here: the contact sheet from the result, else the cover.
function standIn(job, sheet) {
  if (sheet) return h("img", { class: "still", src: sheet, alt: `Contact sheet of video job ${job.id}` });
  if (job.cover_url && displayable(job.cover_url)) {
    return h("img", { class: "still", src: job.cover_url, alt: `Cover of video job ${job.id}` });
  }
  return null;
}

function videoPlayer(job, sheet) {
  const actions = linkActions(job.result_url, fileName(job.result_url, `video-${job.id}.mp4`), "video/mp4");
  const why = blockedReason(job.result_url);
  if (why) {
    return h("figure", { class: "player missing" }, standIn(job, sheet),
      h("p", { class: "why" }, `The player is missing because ${why}. Open the video instead.`),
      videoCaption(job), actions);
  }
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const video = h("video", {
    src: job.result_url,
    poster: job.cover_url && displayable(job.cover_url) ? job.cover_url : null,
    controls: true,
    loop: true,
    muted: true,
    playsinline: true,
    autoplay: !still,
    preload: "auto",
    width: job.width || null,
    height: job.height || null,
    "aria-label": `Video job ${job.id}`,
  });
  video.addEventListener("error", () => {
    video.replaceWith(h("div", { class: "missing" }, standIn(job, sheet),
      h("p", { class: "why" }, "The video did not play here (its link may have expired). Open it instead.")));
  });
  return h("figure", { class: "player" }, video, videoCaption(job), actions);
}

function failure(text, retry) {
  return h("div", { class: "problem", role: "alert" }, h("p", {}, text),
    retry ? h("button", { type: "button", onclick: retry }, "Check again") : null);
}

// Renders one get_video_result / generate_video result into `root`; `watch.stopped = true` ends a watch.
function renderVideoResult(root, result, watch = { stopped: false }) {
  if (result.isError) {
    replace(root, failure(textOf(result)));
    return;
  }
  const job = structuredOf(result);
  if (!job || typeof job.id !== "number" || typeof job.status !== "string") {
    replace(root, h("pre", { class: "raw" }, textOf(result)));
  } else if (job.status === "succeeded") {
    replace(root, videoPlayer(job, inlineImageOf(result)), job.message ? h("p", { class: "muted" }, job.message) : null);
  } else if (job.status === "failed") {
    replace(root, failure(job.message || `Video job ${job.id} failed.`));
  } else {
    watchVideo(root, job, watch);
  }
}

// How long is left, from the view's own readings: queue positions per second, percent per second.
function estimateLeft(samples) {
  const last = samples[samples.length - 1];
  if (last.status === "queued") {
    const first = samples.find((s) => s.status === "queued" && s.wait >= last.wait && s.at < last.at);
    if (!first || first.wait <= last.wait) return null;
    return { seconds: (last.wait * (last.at - first.at)) / (first.wait - last.wait), until: "it starts rendering" };
  }
  const first = samples.find((s) => s.status === "processing" && s.at < last.at && s.percentage < last.percentage);
  if (!first) return null;
  const rate = (last.percentage - first.percentage) / (last.at - first.at);
  return { seconds: (100 - last.percentage) / rate, until: "it is done" };
}

function watchVideo(root, job, watch) {
  const samples = [];
  const bar = h("progress", { max: "100", value: String(job.percentage || 0), "aria-label": `Progress of video job ${job.id}` });
  const state = h("p", { class: "state", role: "status", "aria-live": "polite" });
  const left = h("p", { class: "muted left" });
  const source = job.image_url && displayable(job.image_url)
    ? h("img", { class: "source", src: job.image_url, alt: "The source image" }) : null;
  const panel = h("section", { class: "watch", "aria-busy": "true" },
    h("h2", {}, `Video job ${job.id}`), source, bar, state, left,
    h("p", { class: "muted" }, "This view checks on the job by itself (free) and plays the video when it is done."));
  replace(root, panel);

  const show = (current) => {
    samples.push({ at: Date.now() / 1000, status: current.status, percentage: current.percentage || 0, wait: current.wait_number || 0 });
    bar.value = current.percentage || 0;
    state.textContent = current.status === "queued"
      ? `Queued at cutout.pro: ${current.wait_number ? `${plural(current.wait_number, "job")} ahead` : "about to start"}`
      : `Rendering: ${Math.round(current.percentage || 0)}%`;
    tick();
  };
  const tick = () => {
    const estimate = samples.length ? estimateLeft(samples) : null;
    if (!estimate || !Number.isFinite(estimate.seconds)) {
      left.textContent = "Time left: estimating…";
      return;
    }
    const since = Date.now() / 1000 - samples[samples.length - 1].at;
    const remaining = estimate.seconds - since;
    left.textContent = remaining > 1 ? `About ${duration(remaining)} until ${estimate.until}` : "Almost there…";
  };
  const ticker = setInterval(tick, 1000);
  const stop = () => clearInterval(ticker);

  const check = async () => {
    let failures = 0;
    let checks = 0;
    let current = job;
    while (!watch.stopped && !tornDown) {
      let result;
      try {
        result = await callTool("get_video_result", { id: job.id, wait_seconds: waitSeconds(current, checks) });
        checks += 1;
      } catch (error) {
        failures += 1;
        if (failures >= MAX_FAILED_CHECKS) {
          stop();
          replace(root, failure(`Stopped checking on video job ${job.id}: ${error.message}`, () => watchVideo(root, job, watch)));
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 2000 * failures));
        continue;
      }
      failures = 0;
      if (watch.stopped || tornDown) break;
      current = structuredOf(result);
      if (result.isError || !current || current.status === "succeeded" || current.status === "failed") {
        stop();
        const final = result.isError && /failed at cutout\.pro/.test(textOf(result));
        if (result.isError && !final) {
          replace(root, failure(textOf(result), () => watchVideo(root, job, watch)));
        } else {
          renderVideoResult(root, result, watch);
        }
        return;
      }
      show(current);
    }
    stop();
  };
  show(job);
  check();
}
