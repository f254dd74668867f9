// The view of generate_video and get_video_result: a finished job plays, an unfinished one is watched.

(() => {
  let shown = false;
  const main = start({
    ready() {
      if (shown) return;
      const doing = toolName() === "generate_video" ? "Submitting the video job…" : "Reading the video job…";
      replace(main, h("p", { class: "muted", role: "status" }, doing));
    },
    result(result) {
      shown = true;
      renderVideoResult(main, result);
    },
  });
})();
