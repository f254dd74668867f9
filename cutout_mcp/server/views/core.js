// cutout-mcp views, shared part: the View side of the MCP Apps protocol (JSON-RPC 2.0 over postMessage),
// the host's theme and size, which media this view may load, and small DOM helpers.
//
// Written against the MCP Apps specification (io.modelcontextprotocol/ui): ui/initialize, then
// ui/notifications/initialized; the host sends tool-input, tool-result, tool-cancelled and
// host-context-changed notifications; the view asks tools/call, ui/open-link and ui/download-file.
// No code from strings, no object URLs, nothing fetched: the host's Content-Security-Policy allows only
// what the resource declared.

const PROTOCOL_VERSION = "2026-01-26";
const REQUEST_TIMEOUT_MS = 75000; // the host bounds a proxied tools/call itself (60 s in the official one)
const FREE_TOOLS = new Set(["get_video_result", "list_video_jobs"]); // a view never spends credits

const config = readConfig();
const pending = new Map();
const handlers = new Map();
let nextId = 1;
let hostCapabilities = {};
let hostContext = {};
let tornDown = false;

function readConfig() {
  const meta = document.querySelector('meta[name="cutout-view"]');
  try {
    return JSON.parse(meta ? meta.content : "{}");
  } catch (_) {
    return {};
  }
}

// --- the wire ------------------------------------------------------------------------------------------

class RpcError extends Error {
  constructor(error) {
    super(error && typeof error.message === "string" ? error.message : "the host refused the request");
    this.code = error && error.code;
  }
}

function post(message) {
  window.parent.postMessage(message, "*"); // the host's origin is not known to a view
}

function request(method, params, timeoutMs = REQUEST_TIMEOUT_MS) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`no answer from the host to ${method} within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    pending.set(id, { resolve, reject, timer });
    post({ jsonrpc: "2.0", id, method, params });
  });
}

function notify(method, params) {
  post({ jsonrpc: "2.0", method, params });
}

function answer(message) {
  const reply = { jsonrpc: "2.0", id: message.id };
  if (message.method === "ping") {
    reply.result = {};
  } else if (message.method === "ui/resource-teardown") {
    tornDown = true;
    reply.result = {};
  } else {
    reply.error = { code: -32601, message: `${message.method} is not supported by this view` };
  }
  post(reply);
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent) return;
  const message = event.data;
  if (!message || typeof message !== "object" || message.jsonrpc !== "2.0") return;
  if (message.method === undefined) {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    clearTimeout(waiter.timer);
    if (message.error) waiter.reject(new RpcError(message.error));
    else waiter.resolve(message.result || {});
  } else if (message.id !== undefined && message.id !== null) {
    answer(message);
  } else {
    const handler = handlers.get(message.method);
    if (handler) handler(message.params || {});
  }
});

// --- what the view may ask the host for ----------------------------------------------------------------

function callTool(name, args) {
  if (!FREE_TOOLS.has(name)) return Promise.reject(new Error(`${name} is not a free tool; a view never calls it`));
  return request("tools/call", { name, arguments: args });
}

function canOpenLinks() {
  return Boolean(hostCapabilities.openLinks);
}

function canDownload() {
  return Boolean(hostCapabilities.downloadFile);
}

function openLink(url) {
  return request("ui/open-link", { url });
}

function downloadFile(url, name, mimeType) {
  const link = { type: "resource_link", uri: url, name };
  if (mimeType) link.mimeType = mimeType;
  return request("ui/download-file", { contents: [link] });
}

// --- theme and size ------------------------------------------------------------------------------------

function applyContext(context) {
  hostContext = Object.assign({}, hostContext, context);
  const root = document.documentElement;
  if (context.theme === "light" || context.theme === "dark") {
    root.dataset.theme = context.theme;
    root.style.colorScheme = context.theme;
  }
  const variables = context.styles && context.styles.variables;
  if (variables && typeof variables === "object") {
    for (const [name, value] of Object.entries(variables)) {
      if (name.startsWith("--") && typeof value === "string") root.style.setProperty(name, value);
    }
  }
  const box = context.containerDimensions;
  if (box && typeof box === "object") {
    const height = typeof box.height === "number" ? box.height : box.maxHeight;
    root.classList.toggle("fixed-height", typeof box.height === "number");
    if (typeof height === "number" && height > 0) root.style.setProperty("--view-height", `${height}px`);
  }
  const insets = context.safeAreaInsets;
  if (insets && typeof insets === "object") {
    for (const side of ["top", "right", "bottom", "left"]) {
      if (typeof insets[side] === "number") root.style.setProperty(`--inset-${side}`, `${insets[side]}px`);
    }
  }
}

function reportSize() {
  let last = -1;
  let queued = false;
  const send = () => {
    queued = false;
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== last) {
      last = height;
      notify("ui/notifications/size-changed", { height });
    }
  };
  const schedule = () => {
    if (!queued) {
      queued = true;
      requestAnimationFrame(send);
    }
  };
  new ResizeObserver(schedule).observe(document.documentElement);
  schedule();
}

// --- which media this view may load ---------------------------------------------------------------------

function allowedOrigins() {
  const declared = Array.isArray(config.mediaOrigins) ? config.mediaOrigins : [];
  const approved = hostCapabilities.sandbox && hostCapabilities.sandbox.csp && hostCapabilities.sandbox.csp.resourceDomains;
  return Array.isArray(approved) ? declared.filter((origin) => approved.includes(origin)) : declared;
}

function parseUrl(url) {
  if (typeof url !== "string" || url === "") return null;
  try {
    return new URL(url);
  } catch (_) {
    return null;
  }
}

function matchesOrigin(pattern, url) {
  const wildcard = pattern.includes("://*.");
  const declared = parseUrl(wildcard ? pattern.replace("://*.", "://") : pattern);
  if (!declared || declared.protocol !== url.protocol || declared.port !== url.port) return false;
  return wildcard ? url.hostname.endsWith(`.${declared.hostname}`) : url.hostname === declared.hostname;
}

// Why `url` cannot be shown here, or "" when it can: an inline image, or an origin declared to the host.
function blockedReason(url) {
  if (typeof url === "string" && /^data:image\/(png|jpeg|gif|webp);base64,/i.test(url)) return "";
  const parsed = parseUrl(url);
  if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) return "it is not a web address";
  if (allowedOrigins().some((pattern) => matchesOrigin(pattern, parsed))) return "";
  return `${parsed.origin} is not among the media origins this server declares to the host (CUTOUT_MEDIA_ORIGINS)`;
}

function displayable(url) {
  return blockedReason(url) === "";
}

// --- tool results --------------------------------------------------------------------------------------

function structuredOf(result) {
  if (result && result.structuredContent && typeof result.structuredContent === "object") {
    return result.structuredContent;
  }
  for (const block of (result && result.content) || []) {
    if (block.type !== "text") continue;
    try {
      const value = JSON.parse(block.text);
      if (value && typeof value === "object") return value;
    } catch (_) {
      // not the JSON copy of the result
    }
  }
  return null;
}

function textOf(result) {
  const texts = ((result && result.content) || []).filter((b) => b.type === "text").map((b) => b.text);
  return texts.join("\n") || "The tool gave no text.";
}

function inlineImageOf(result) {
  const block = ((result && result.content) || []).find(
    (b) => b.type === "image" && /^image\/(png|jpeg|gif|webp)$/.test(b.mimeType) && typeof b.data === "string",
  );
  return block ? `data:${block.mimeType};base64,${block.data}` : null;
}

function toolName() {
  const info = hostContext.toolInfo;
  return (info && info.tool && info.tool.name) || "";
}

// --- DOM and words -------------------------------------------------------------------------------------

function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    else if (value === true) {
      element.setAttribute(key, "");
      if (key in element) element[key] = true;
    } else element.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function replace(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function duration(seconds) {
  const s = Math.max(0, seconds);
  return s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

function dateText(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return "";
  const options = { dateStyle: "medium", timeStyle: "short" };
  if (hostContext.timeZone) options.timeZone = hostContext.timeZone;
  try {
    return new Intl.DateTimeFormat(hostContext.locale || undefined, options).format(date);
  } catch (_) {
    return date.toISOString();
  }
}

function fileName(url, fallback) {
  const parsed = parseUrl(url);
  const last = parsed ? decodeURIComponent(parsed.pathname.split("/").pop() || "") : "";
  return /^[\w.-]{1,80}$/.test(last) ? last : fallback;
}

// Download and Open buttons for a result URL, with a line that says what the host answered; nothing for
// anything but a web address.
function linkActions(url, name, mimeType) {
  const parsed = parseUrl(url);
  if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) return null;
  const note = h("span", { class: "note", role: "status" });
  const act = (label, work) =>
    h("button", {
      type: "button",
      onclick: async () => {
        note.textContent = "";
        try {
          await work();
        } catch (error) {
          note.textContent = `${label}: ${error.message}`;
        }
      },
    }, label);
  const buttons = [];
  if (canDownload()) buttons.push(act("Download", () => downloadFile(url, name, mimeType)));
  if (canOpenLinks()) buttons.push(act("Open", () => openLink(url)));
  if (!buttons.length) buttons.push(h("code", { class: "url" }, url));
  return h("div", { class: "actions" }, buttons, note);
}

// --- start-up ------------------------------------------------------------------------------------------

// `view` is { input(args), result(result), cancelled(reason), ready() }; every member is optional.
function start(view) {
  const main = document.getElementById("view");
  handlers.set("ui/notifications/tool-input", (p) => view.input && view.input(p.arguments || {}));
  handlers.set("ui/notifications/tool-result", (p) => view.result && view.result(p));
  handlers.set("ui/notifications/tool-cancelled", (p) => {
    if (view.cancelled) view.cancelled(p.reason || "");
    else replace(main, h("p", { class: "problem" }, `The tool call was cancelled${p.reason ? `: ${p.reason}` : "."}`));
  });
  handlers.set("ui/notifications/host-context-changed", applyContext);
  reportSize();
  request("ui/initialize", {
    appInfo: { name: "cutout-mcp", version: config.version || "0" },
    appCapabilities: { availableDisplayModes: ["inline"] },
    protocolVersion: PROTOCOL_VERSION,
  }).then(
    (init) => {
      hostCapabilities = init.hostCapabilities || {};
      applyContext(init.hostContext || {});
      notify("ui/notifications/initialized", {});
      if (view.ready) view.ready();
    },
    (error) => replace(main, h("p", { class: "problem" }, `The host did not start this view: ${error.message}`)),
  );
  return main;
}
