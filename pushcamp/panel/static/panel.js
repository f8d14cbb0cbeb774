// Live progress on a campaign page while it sends: poll the panel's own JSON endpoint
// (same origin, the session cookie) and update the numbers in place; reload once the
// launch has ended, to show the finished campaign. Without JavaScript the page refreshes
// itself instead (<noscript> meta refresh).
(function () {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root) return;
  var url = root.getAttribute("data-progress-url");
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function pct(rate) { return (Number(rate) * 100).toFixed(2) + "%"; }
  function set(name, text) {
    var el = document.querySelector('[data-live="' + name + '"]');
    if (el) el.textContent = text;
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        // Signed out meanwhile (a redirect to the sign-in page): show it.
        if (r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (p) {
        if (!p) { setTimeout(tick, 5000); return; }
        ["targeted", "sent", "dropped", "delivered", "clicks"].forEach(function (k) {
          set(k, fmt(p[k]));
        });
        set("delivery-rate", pct(p.delivery_rate) + " of sent");
        set("ctr", "CTR " + pct(p.ctr));
        set("percent-label", p.percent + "%");
        var bar = document.querySelector("[data-live=percent]");
        if (bar) bar.style.width = p.percent + "%";
        if (p.sending) { setTimeout(tick, 2000); } else { window.location.reload(); }
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 2000);
})();
