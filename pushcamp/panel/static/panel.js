// Live progress on a campaign page while it sends: poll the panel's own JSON endpoint
// (same origin, the session cookie) and update the numbers in place. Without JavaScript
// the page refreshes itself instead (<noscript> meta refresh).
(function () {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root) return;
  var url = root.getAttribute("data-progress-url");
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) return;
        ["targeted", "sent", "dropped", "delivered", "clicks"].forEach(function (k) {
          var el = document.querySelector('[data-live="' + k + '"]');
          if (el) el.textContent = fmt(p[k]);
        });
        var bar = document.querySelector("[data-live=percent]");
        if (bar) bar.style.width = p.percent + "%";
        var label = document.querySelector("[data-live=percent-label]");
        if (label) label.textContent = p.percent + "%";
        if (p.sending) { setTimeout(tick, 2000); } else { window.location.reload(); }
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 2000);
})();
