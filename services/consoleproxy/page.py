"""The console page (``/vnc_auto.html``): one self-contained HTML document.

No external assets: a few lines of script open the proxy's websocket with the
page's token, speak the RFB handshake (version 3.8, security None) with the
guest's VNC server through it, and show the desktop's name and size on a
canvas. It is a minimal client, enough to see that the console is reached; a
full noVNC can be pointed at the same ``/websockify?token=...``.

The page comes with its Content-Security-Policy (:func:`page_policy`): its one
inline style and one inline script, by hash, a websocket to the proxy, and
nothing else (no other script, style, image, font, frame, form or base URL).
What differs from page to page (the websocket path with its token) travels as
a JSON data block, which is not script, so the script's hash never changes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from string import Template

# The page's own style and script, fixed text: the Content-Security-Policy
# allows exactly these by their SHA-256 (so an injected one would not run).
_STYLE = """
  body { margin: 0; background: #282828; color: #eee; font: 14px sans-serif; }
  #bar { padding: 6px 10px; background: #404040; }
  #screen { display: block; margin: 10px auto; background: #000; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("console-config").textContent);
  var status = document.getElementById("status");
  var canvas = document.getElementById("screen");
  function say(text) { status.textContent = text; }
  var base = cfg.base;
  if (!base) {
    base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
           location.pathname.replace(/[^\\/]*$/, "");
  }
  var ws = new WebSocket(base + cfg.path, ["binary"]);
  ws.binaryType = "arraybuffer";
  var buf = new Uint8Array(0), stage = "version", need = 12;
  function send(bytes) { ws.send(new Uint8Array(bytes).buffer); }
  function fail(text) { say(text); ws.close(); }
  function u32(a, i) { return ((a[i] << 24) >>> 0) + (a[i + 1] << 16) + (a[i + 2] << 8) + a[i + 3]; }
  ws.onopen = function () { say("Connected to the proxy, waiting for the guest..."); };
  ws.onmessage = function (event) {
    var chunk = new Uint8Array(event.data), merged = new Uint8Array(buf.length + chunk.length);
    merged.set(buf); merged.set(chunk, buf.length); buf = merged;
    while (stage !== "running" && stage !== "failed" && buf.length >= need) {
      var head = buf.subarray(0, need), used = need;  // branches below move need on
      if (stage === "version") {
        var banner = String.fromCharCode.apply(null, head);
        if (banner.indexOf("RFB ") !== 0) { stage = "failed"; fail("Not a VNC server."); return; }
        send(Array.prototype.map.call("RFB 003.008\\n", function (c) { return c.charCodeAt(0); }));
        stage = "types"; need = 1;
      } else if (stage === "types") {
        if (buf.length < 1 + head[0]) { return; }
        var types = buf.subarray(1, 1 + head[0]);
        need = 1 + head[0];
        if (Array.prototype.indexOf.call(types, 1) < 0) { stage = "failed"; fail("The console needs a password."); return; }
        send([1]); stage = "result"; buf = buf.subarray(need); need = 4; continue;
      } else if (stage === "result") {
        if (u32(head, 0) !== 0) { stage = "failed"; fail("The guest refused the console."); return; }
        send([1]); stage = "init"; need = 24;
      } else if (stage === "init") {
        var len = u32(head, 20);
        if (buf.length < 24 + len) { return; }
        var w = (head[0] << 8) + head[1], h = (head[2] << 8) + head[3];
        var name = new TextDecoder().decode(buf.subarray(24, 24 + len));
        canvas.width = w; canvas.height = h;
        var ctx = canvas.getContext("2d");
        ctx.fillStyle = "#000"; ctx.fillRect(0, 0, w, h);
        say("Connected to " + name + " (" + w + "x" + h + ")");
        send([3, 0, 0, 0, 0, 0, w >> 8, w & 255, h >> 8, h & 255]);
        buf = buf.subarray(24 + len); stage = "running"; return;
      }
      buf = buf.subarray(used);
    }
  };
  ws.onclose = function (event) {
    if (stage !== "failed") { say("Disconnected" + (event.reason ? ": " + event.reason : ".")); }
  };
}());
"""

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>$style</style>
</head>
<body>
<div id="bar"><strong>$title</strong> &mdash; <span id="status">Connecting...</span></div>
<canvas id="screen" width="640" height="480"></canvas>
<script id="console-config" type="application/json">$config</script>
<script>$script</script>
</body>
</html>
""")


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


_STYLE_SOURCE = _sha256_source(_STYLE)
_SCRIPT_SOURCE = _sha256_source(_SCRIPT)

# For every other response of the proxy (refusals, health): nothing may load,
# and nothing may frame it.
DEFAULT_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def console_page(*, title: str, path: str, base: str) -> str:
    """The page for one console: ``path`` (with the token) under ``base`` (a ws:// or
    wss:// URL ending in ``/``; empty: next to the page). Serve it with
    :func:`page_policy`, or its script is not allowed to run."""
    # JSON inside <script>: "<" escaped, so no value can close the element.
    config = json.dumps({"path": path, "base": base}).replace("<", "\\u003c")
    return _PAGE.substitute(title=html.escape(title), config=config, style=_STYLE,
                            script=_SCRIPT)


def page_policy(connect_src: str) -> str:
    """The console page's Content-Security-Policy; ``connect_src`` is where its
    websocket goes (see ``origin.websocket_source``)."""
    return (f"default-src 'none'; script-src {_SCRIPT_SOURCE}; style-src {_STYLE_SOURCE}; "
            f"connect-src {connect_src}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def refusal_page(message: str) -> str:
    """What a browser shows for a refused token."""
    text = html.escape(message)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Console unavailable</title></head><body><h1>Console unavailable</h1>"
            f"<p>{text}</p></body></html>\n")
