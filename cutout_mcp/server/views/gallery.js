// The view of list_video_jobs: a gallery of the caller's jobs; choosing one reads it (free) and plays it.

const STATUS_WORDS = { queued: "Queued", processing: "Rendering", succeeded: "Done", failed: "Failed" };

function cardPicture(job) {
  for (const url of [job.cover_url, job.image_url]) {
    if (url && displayable(url)) return h("img", { src: url, alt: "", loading: "lazy" });
  }
  return h("span", { class: "placeholder" }, STATUS_WORDS[job.status] || job.status);
}

function card(job, choose) {
  const status = STATUS_WORDS[job.status] || job.status;
  const progress = job.status === "processing" ? ` ${Math.round(job.percentage || 0)}%` : "";
  const when = dateText(job.created_at);
  return h("li", {},
    h("button", {
      type: "button",
      class: "card",
      "data-job": String(job.id),
      "aria-label": `Video job ${job.id}, ${status}${progress}${when ? `, ${when}` : ""}`,
      onclick: (event) => choose(job, event.currentTarget),
    },
    cardPicture(job),
    h("span", { class: `badge ${job.status}` }, status + progress),
    h("span", { class: "when" }, when),
    job.prompt ? h("span", { class: "prompt" }, job.prompt) : null));
}

function creditsLine(credits) {
  if (!credits) return null;
  let text = `You have spent ${plural(credits.spent || 0, "credit")} on this server's ledger`;
  if (typeof credits.budget === "number") text += ` (budget ${credits.budget}, ${credits.remaining} left)`;
  return h("p", { class: "muted" }, `${text}.`);
}

// The list again, with the call's own arguments (free: the ledger, as last read); the gallery is replaced.
function refreshButton(root, args) {
  const note = h("span", { class: "note", role: "status" });
  const button = h("button", {
    type: "button",
    class: "refresh",
    onclick: async () => {
      button.disabled = true;
      note.textContent = "Refreshing…";
      try {
        renderGallery(root, await callTool("list_video_jobs", args), args);
        root.querySelector(".refresh").focus();
      } catch (error) {
        button.disabled = false;
        note.textContent = `Could not refresh: ${error.message}`;
      }
    },
  }, "Refresh");
  return h("div", { class: "actions" }, button, note);
}

function renderGallery(root, result, args) {
  if (result.isError) {
    replace(root, h("div", { class: "problem", role: "alert" }, h("p", {}, textOf(result))));
    return;
  }
  const list = structuredOf(result);
  const jobs = list && Array.isArray(list.jobs) ? list.jobs : null;
  if (!jobs) {
    replace(root, h("pre", { class: "raw" }, textOf(result)));
    return;
  }
  const gallery = h("section", { class: "gallery", "aria-label": "Your video jobs" },
    h("h2", {}, jobs.length ? `Your video jobs (${jobs.length})` : "No video jobs yet"),
    creditsLine(list.credits),
    refreshButton(root, args),
    h("ul", { class: "cards" }, jobs.map((job) => card(job, (chosen, button) => openJob(root, gallery, chosen, button)))));
  replace(root, gallery);
}

function openJob(root, gallery, job, button) {
  const watch = { stopped: false };
  const detail = h("div", { class: "detail" }, h("p", { class: "muted", role: "status" }, `Reading video job ${job.id}…`));
  const back = () => {
    watch.stopped = true;
    document.removeEventListener("keydown", onKey);
    replace(root, gallery);
    button.focus();
  };
  const onKey = (event) => {
    if (event.key === "Escape") back();
  };
  const backButton = h("button", { type: "button", class: "back", onclick: back }, "← All jobs");
  replace(root, backButton, detail);
  document.addEventListener("keydown", onKey);
  backButton.focus();
  callTool("get_video_result", { id: job.id, wait_seconds: 0 }).then(
    (result) => {
      if (!watch.stopped) renderVideoResult(detail, result, watch);
    },
    (error) => {
      if (!watch.stopped) replace(detail, failure(`Could not read video job ${job.id}: ${error.message}`));
    },
  );
}

(() => {
  let shown = false;
  let args = {};
  const main = start({
    ready() {
      if (!shown) replace(main, h("p", { class: "muted", role: "status" }, "Reading your video jobs…"));
    },
    input(given) {
      args = given;
    },
    result(result) {
      shown = true;
      renderGallery(main, result, args);
    },
  });
})();
