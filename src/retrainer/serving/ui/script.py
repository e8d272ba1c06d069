"""The dashboard's only scripts, inlined in its pages: polling the page's JSON route, and an
action's confirm step then its POST to the ``/v1`` route.

An action sends ``Authorization: Bearer <token>`` (typed into the page, never stored) and a
JSON body, so it meets exactly the checks of every API call (``serving.edge``): the token,
the same-origin rule and the JSON content type. No cookie carries the token, so another site
cannot make a browser send an authorised request (it would need the token, and a JSON POST
from a foreign origin needs a CORS preflight that only listed origins pass).
"""

from __future__ import annotations

POLL_JS = """
(function () {
  const body = document.body, base = body.dataset.base || "";
  async function poll() {
    if (document.hidden) return;
    try {
      const r = await fetch(base + body.dataset.poll, {cache: "no-store"});
      const j = await r.json();
      if (j.html !== undefined) document.getElementById("live").innerHTML = j.html;
      document.getElementById("banner").innerHTML = j.banner || "";
    } catch (err) {
      document.getElementById("banner").innerHTML =
        '<div class="banner" role="alert"><b>The server does not answer.</b> Retrying.</div>';
    }
  }
  window.retrainerPoll = poll;
  setInterval(poll, 5000);
})();
"""

ACTIONS_JS = """
(function () {
  const body = document.body, base = body.dataset.base || "", model = body.dataset.model;
  const box = document.getElementById("confirm"), text = document.getElementById("confirm-text");
  const result = document.getElementById("result");
  let pending = null;
  function say(cls, message) { result.className = cls; result.textContent = message; }
  document.querySelectorAll("form[data-action]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const kind = form.dataset.action, payload = {};
      let what = "";
      if (kind === "deploy") {
        payload.version = form.elements.version.value;
        payload.reason = "deploy from the dashboard";
        what = "Deploy " + payload.version + " as the champion of " + model + "?";
      } else if (kind === "rollback") {
        const to = form.elements.to.value;
        if (to) payload.to = to;
        payload.reason = "rollback from the dashboard";
        what = "Roll back " + model + " to " + (to || "the previous champion") + "?";
      } else {
        payload.dry_run = form.elements.dry_run.checked;
        what = payload.dry_run
          ? "Run maintain on " + model + " as a dry run? The policy records its decision; " +
            "nothing is trained or deployed."
          : "Run maintain on " + model + "? It may train and deploy a new version.";
      }
      pending = {kind: kind, payload: payload};
      text.textContent = what;
      box.hidden = false;
      say("", "");
    });
  });
  document.getElementById("confirm-no").addEventListener("click", function () {
    pending = null; box.hidden = true; say("", "Cancelled: nothing changed.");
  });
  document.getElementById("confirm-yes").addEventListener("click", async function () {
    if (!pending) return;
    const p = pending; pending = null; box.hidden = true;
    const headers = {"Content-Type": "application/json"};
    const field = document.getElementById("token");
    if (field && field.value) headers["Authorization"] = "Bearer " + field.value;
    say("running", p.kind + ": running…");
    try {
      const r = await fetch(base + "/v1/models/" + encodeURIComponent(model) + "/" + p.kind,
        {method: "POST", headers: headers, body: JSON.stringify(p.payload)});
      const j = await r.json().catch(function () { return {}; });
      if (r.ok) {
        const moved = j.to_version ? ": champion is now " + j.to_version : "";
        const act = j.action ? ": " + j.action : "";
        say("ok", p.kind + " done" + (moved || act) + ".");
      } else if (r.status === 401 || r.status === 403) {
        say("refused", "Refused (HTTP " + r.status + "): " + (j.message || "token") +
          " Nothing changed.");
      } else {
        say("refused", p.kind + " failed (HTTP " + r.status + "): " + (j.message || ""));
      }
    } catch (err) {
      say("refused", p.kind + ": the server did not answer (" + err + ").");
    }
    if (window.retrainerPoll) window.retrainerPoll();
  });
})();
"""
