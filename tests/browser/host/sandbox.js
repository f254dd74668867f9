// The sandbox proxy of a web host, as the MCP Apps specification describes it: served from a second
// origin with a Content-Security-Policy header built from the view's `_meta.ui.csp`, it writes the
// view's HTML into an inner iframe (which inherits that policy) and relays messages both ways.
//
// Test instrumentation: what the view does that a test must see (CSP violations, uncaught errors,
// when its video shows its first frame, the status lines it showed) is recorded in `window.viewEvents`,
// read by Playwright.

(() => {
  const host = window.parent;
  const hostOrigin = document.referrer ? new URL(document.referrer).origin : "*";
  const events = (window.viewEvents = { violations: [], errors: [], frames: [], states: [] });
  const inner = document.createElement("iframe");
  inner.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
  document.body.appendChild(inner);

  const now = () => performance.timeOrigin + performance.now();

  function watch(win) {
    const doc = win.document;
    doc.addEventListener("securitypolicyviolation", (e) => {
      events.violations.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample });
    });
    win.addEventListener("error", (e) => {
      if (e.target === win) events.errors.push(String(e.message || e.error));
    });
    win.addEventListener("unhandledrejection", (e) => events.errors.push(`unhandled rejection: ${e.reason}`));
    // every status line the view shows, in order, so a test can read what it went through
    new win.MutationObserver(() => {
      const shown = [...doc.querySelectorAll("[role=status]")].map((e) => e.textContent).join(" | ");
      if (shown && shown !== events.states[events.states.length - 1]) events.states.push(shown);
    }).observe(doc, { subtree: true, childList: true, characterData: true });
    // media events do not bubble, but they pass the document on their way down (capture)
    doc.addEventListener("loadeddata", (e) => {
      const video = e.target;
      if (!(video instanceof win.HTMLVideoElement)) return;
      events.frames.push({ kind: "loadeddata", at: now(), src: video.currentSrc });
      video.requestVideoFrameCallback(() => events.frames.push({ kind: "presented", at: now(), src: video.currentSrc }));
    }, true);
  }

  window.addEventListener("message", (event) => {
    if (event.source === host) {
      const message = event.data;
      if (message && message.method === "ui/notifications/sandbox-resource-ready") {
        const doc = inner.contentDocument;
        doc.open();
        doc.write(message.params.html);
        doc.close();
        watch(inner.contentWindow);
      } else if (inner.contentWindow) {
        inner.contentWindow.postMessage(message, "*");
      }
    } else if (event.source === inner.contentWindow) {
      host.postMessage(event.data, hostOrigin);
    }
  });

  host.postMessage({ jsonrpc: "2.0", method: "ui/notifications/sandbox-proxy-ready", params: {} }, hostOrigin);
})();
