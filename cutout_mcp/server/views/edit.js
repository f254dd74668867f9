// The view of edit_image: the first reference image beside the result, the model and cost, the other
// references as thumbnails.

function referenceLabel(reference) {
  const text = String(reference || "");
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

// A labelled picture: `url` when this view may load it, else `inline` (from the result), else its label.
function picture(label, url, inline, alt) {
  const source = url && displayable(url) ? url : inline;
  const placeholder = () =>
    h("div", { class: "placeholder" }, h("span", {}, url ? referenceLabel(url) : "not available"),
      url && !source ? h("small", {}, `Not shown: ${blockedReason(url)}.`) : null);
  let body = placeholder();
  if (source) {
    body = h("img", { src: source, alt });
    body.addEventListener("error", () => body.replaceWith(placeholder()), { once: true });
  }
  return h("figure", { class: "side" }, body, h("figcaption", {}, label));
}

function thumbnail(reference, index) {
  const label = `Reference ${index + 2}`;
  if (displayable(reference)) {
    return h("li", {}, h("img", { class: "thumb", src: reference, alt: label, title: referenceLabel(reference) }));
  }
  return h("li", {}, h("span", { class: "thumb placeholder", title: referenceLabel(reference) }, label));
}

function renderEdit(root, result) {
  if (result.isError) {
    replace(root, h("div", { class: "problem", role: "alert" }, h("p", {}, textOf(result))));
    return;
  }
  const edit = structuredOf(result);
  if (!edit || typeof edit.image_url !== "string") {
    replace(root, h("pre", { class: "raw" }, textOf(result)));
    return;
  }
  const references = Array.isArray(edit.reference_image_urls) ? edit.reference_image_urls : [];
  const details = [
    ["Model", edit.model],
    ["Cost", `${plural(edit.credits_charged || 0, "credit")}`],
    ["Aspect ratio", edit.aspect_ratio],
    ["Took", typeof edit.duration_seconds === "number" ? duration(edit.duration_seconds) : null],
    ["Made", dateText(edit.created_at)],
  ].filter(([, value]) => value);
  const others = references.slice(1);
  replace(root,
    h("section", { class: "compare", "aria-label": "Before and after" },
      picture("Before", references[0], null, "The first reference image"),
      picture("After", edit.image_url, inlineImageOf(result), `The edited image: ${edit.prompt || ""}`)),
    edit.prompt ? h("p", { class: "prompt" }, edit.prompt) : null,
    h("dl", { class: "facts" }, details.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
    others.length ? h("div", { class: "others" }, h("h3", {}, "Other references"),
      h("ul", { class: "thumbs" }, others.map(thumbnail))) : null,
    linkActions(edit.image_url, fileName(edit.image_url, `edit-${edit.id}.jpg`), "image/jpeg"));
}

(() => {
  let shown = false;
  const main = start({
    ready() {
      if (!shown) replace(main, h("p", { class: "muted", role: "status" }, "Editing the image…"));
    },
    result(result) {
      shown = true;
      renderEdit(main, result);
    },
  });
})();
