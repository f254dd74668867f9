// A minimal MCP Apps web host for the browser tests, on the official host side: the MCP client from
// @modelcontextprotocol/client (declaring the io.modelcontextprotocol/ui extension) and AppBridge from
// @modelcontextprotocol/ext-apps. Each tool call gets its view in a sandbox-proxy iframe on a second
// origin, whose CSP header is built from the view resource's `_meta.ui.csp` (see harness.py).
//
// Playwright drives it through `window.host`; what views ask of the host is kept in `window.host.log`.

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { AppBridge, PostMessageTransport, getToolUiResourceUri } from "@modelcontextprotocol/ext-apps/app-bridge";

const HOST_INFO = { name: "cutout-mcp-test-host", version: "1.0.0" };
const UI_EXTENSION = "io.modelcontextprotocol/ui";
const APP_MIME = "text/html;profile=mcp-app";
const sandboxUrl = new URLSearchParams(location.search).get("sandbox");

const log = { openLinks: [], downloads: [], viewCalls: [], resultSentAt: [], sizes: [], messages: [] };
const bridges = [];
let client = null;
let tools = new Map();

async function connect() {
  client = new Client(HOST_INFO, { capabilities: { extensions: { [UI_EXTENSION]: { mimeTypes: [APP_MIME] } } } });
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href)));
  tools = new Map((await client.listTools()).tools.map((tool) => [tool.name, tool]));
  return [...tools.values()].map((tool) => ({ name: tool.name, view: getToolUiResourceUri(tool) || null }));
}

async function readView(uri) {
  const { contents } = await client.readResource({ uri });
  const content = contents[0];
  if (content.mimeType !== APP_MIME) throw new Error(`${uri} is ${content.mimeType}, not ${APP_MIME}`);
  const ui = (content._meta && content._meta.ui) || {};
  return { html: content.text, csp: ui.csp, prefersBorder: ui.prefersBorder };
}

async function readJson(uri) {
  const { contents } = await client.readResource({ uri });
  return JSON.parse(contents[0].text);
}

function loadSandbox(frame, csp) {
  const ready = new Promise((resolve) => {
    const listener = (event) => {
      if (event.source === frame.contentWindow && event.data && event.data.method === "ui/notifications/sandbox-proxy-ready") {
        window.removeEventListener("message", listener);
        resolve();
      }
    };
    window.addEventListener("message", listener);
  });
  const url = new URL(sandboxUrl);
  if (csp) url.searchParams.set("csp", JSON.stringify(csp));
  frame.src = url.href;
  return ready;
}

function newBridge(frame, tool, theme) {
  const bridge = new AppBridge(client, HOST_INFO, { openLinks: {}, downloadFile: {}, logging: {} }, {
    hostContext: {
      toolInfo: { tool },
      theme,
      displayMode: "inline",
      availableDisplayModes: ["inline"],
      containerDimensions: { maxHeight: 900 },
      locale: "en-US",
      timeZone: "UTC",
      platform: "web",
    },
  });
  bridge.onopenlink = async ({ url }) => {
    log.openLinks.push(url);
    return {};
  };
  bridge.ondownloadfile = async ({ contents }) => {
    log.downloads.push(contents);
    return {};
  };
  bridge.onsizechange = ({ height }) => {
    if (typeof height === "number") frame.style.height = `${height}px`;
    log.sizes.push(height);
  };
  bridge.onmessage = async (params) => {
    log.messages.push(params);
    return {};
  };
  return bridge;
}

// Calls `name` (or takes `options.result` as its result, without calling) and shows its view.
async function show(name, args, options = {}) {
  const tool = tools.get(name);
  if (!tool) throw new Error(`no tool ${name}`);
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error(`${name} has no view`);
  const resultPromise = options.result ? Promise.resolve(options.result) : client.callTool({ name, arguments: args });
  const view = await readView(uri);
  const frame = document.createElement("iframe");
  frame.className = "view";
  frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
  frame.dataset.index = String(bridges.length);
  document.getElementById("chat").append(frame);
  await loadSandbox(frame, view.csp);
  const bridge = newBridge(frame, tool, options.theme || "light");
  bridges.push(bridge);
  const initialized = new Promise((resolve) => {
    bridge.oninitialized = resolve;
  });
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  const forward = bridge.oncalltool; // AppBridge proxies the view's tools/call to the server; note each one
  bridge.oncalltool = async (params, extra) => {
    log.viewCalls.push({ name: params.name, arguments: params.arguments || {} });
    return forward(params, extra);
  };
  await bridge.sendSandboxResourceReady({ html: view.html, csp: view.csp });
  await initialized;
  await bridge.sendToolInput({ arguments: args });
  const result = await resultPromise;
  log.resultSentAt.push(performance.timeOrigin + performance.now());
  await bridge.sendToolResult(result);
  return { index: bridges.length - 1, result };
}

function setTheme(index, theme) {
  document.body.classList.toggle("dark", theme === "dark");
  return bridges[index].sendHostContextChange({ theme });
}

window.host = { connect, show, readView, readJson, setTheme, log };
window.hostReady = true;
