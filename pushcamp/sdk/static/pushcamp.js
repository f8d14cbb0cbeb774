/*! pushcamp SDK: Web Push subscriptions for a partner site. No dependencies, no build.
 *
 *   <script src="https://PUSHCAMP/sdk/pushcamp.js" data-partner="100000001" async></script>
 *   <button onclick="pushcamp.subscribe({attributes: {plan: 'gold'}})">Notify me</button>
 *
 * Optional attributes on the script tag: data-sw (the worker's URL at the site's origin,
 * default /pushcamp-sw.js), data-scope (its registration scope, default the browser's).
 * Everything returns a promise; failures reject with a PushcampError {name, code, message}.
 * subscribe({attributes, timeout}): timeout in ms for the push service (default 30000).
 * conversion({value, currency, order_id}): a purchase after a notification was clicked.
 * Nothing on page load throws or rejects unhandled: a site that never calls the SDK never
 * sees an error from it. See docs/sdk.md.
 */
(function (window) {
  "use strict";

  var VERSION = "1";
  if (window.pushcamp && window.pushcamp.version) return; // loaded twice: keep the first

  var document = window.document;
  var navigator = window.navigator;
  var JSON_TYPE = "text/plain;charset=UTF-8"; // a CORS simple request: no preflight

  function PushcampError(code, message, cause) {
    var error = new Error(message);
    error.name = "PushcampError";
    error.code = code;
    if (cause !== undefined) error.cause = cause;
    return error;
  }

  function describe(cause) {
    if (!cause) return "unknown error";
    return (cause.name ? cause.name + ": " : "") + (cause.message || String(cause));
  }

  function noop() {}

  // -- where we were loaded from ---------------------------------------------------------

  function findScript() {
    var script = document.currentScript;
    if (script && script.getAttribute("data-partner")) return script;
    // currentScript is null when the file is evaluated by a loader rather than a <script>.
    return document.querySelector('script[data-partner][src*="pushcamp.js"]');
  }

  function readOptions(script) {
    if (!script) return null;
    var src = script.src || "";
    return {
      partner: script.getAttribute("data-partner") || "",
      // The server is wherever the script came from: https://host[/prefix]/sdk/pushcamp.js
      base: src.replace(/\/sdk\/pushcamp\.js(?:[?#].*)?$/, ""),
      sw: script.getAttribute("data-sw") || "/pushcamp-sw.js",
      scope: script.getAttribute("data-scope") || undefined,
    };
  }

  var options = readOptions(findScript());

  function isSupported() {
    return (
      !!window.isSecureContext &&
      "serviceWorker" in navigator &&
      "PushManager" in window &&
      "Notification" in window
    );
  }

  function unsupported() {
    return PushcampError("unsupported", "this browser (or this page, if not served over " +
      "https) does not support Web Push");
  }

  // -- small helpers ---------------------------------------------------------------------

  function base64UrlToBytes(value) {
    var padded = value.replace(/-/g, "+").replace(/_/g, "/");
    padded += "===".slice((padded.length + 3) % 4);
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameBytes(a, b) {
    if (!a || !b) return false;
    var x = new Uint8Array(a);
    var y = new Uint8Array(b);
    if (x.length !== y.length) return false;
    for (var i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }

  function withPartner(url, partner) {
    var u = new URL(url, window.location.href);
    u.searchParams.set("partner_id", partner);
    return u.toString();
  }

  // POST/DELETE a JSON body; resolves with the parsed answer, rejects with code "server"
  // (pushcamp answered with an error) or "network" (it could not be reached).
  function send(method, url, body, what) {
    return window
      .fetch(url, {
        method: method,
        headers: { "Content-Type": JSON_TYPE },
        body: JSON.stringify(body),
        credentials: "omit",
        keepalive: method !== "GET",
      })
      .then(
        function (response) {
          return response.text().then(function (text) {
            var data = null;
            try {
              data = text ? JSON.parse(text) : null;
            } catch (e) {
              data = null;
            }
            if (!response.ok) {
              var reasons = data && data.errors ? data.errors.map(function (e) {
                return e.field + ": " + e.reason;
              }) : [];
              throw PushcampError(
                "server",
                "pushcamp refused " + what + " (HTTP " + response.status + ")" +
                  (reasons.length ? ": " + reasons.join("; ") : "")
              );
            }
            return data;
          });
        },
        function (cause) {
          throw PushcampError("network", "could not reach pushcamp for " + what + ": " +
            describe(cause), cause);
        }
      );
  }

  // The worker needs the partner, the subscribe URL and the key when the browser renews a
  // subscription by itself (pushsubscriptionchange), long after this page is gone. The Cache
  // API is shared by the page and the worker of the same origin, and unlike a query string
  // on the worker's URL it also reaches a site's own worker that imports ours.
  var CONFIG_CACHE = "pushcamp";

  function configKey(scope) {
    return "/__pushcamp/config?scope=" + encodeURIComponent(scope);
  }

  function storeWorkerConfig(registration, extra) {
    if (!window.caches) return Promise.resolve();
    var value = {
      partner_id: options.partner,
      subscribe_url: withPartner(state.config.subscribe_url, options.partner),
      vapid_public_key: state.config.vapid_public_key,
      endpoint: extra && extra.endpoint,
    };
    return window.caches
      .open(CONFIG_CACHE)
      .then(function (cache) {
        return cache.put(
          configKey(registration.scope),
          new Response(JSON.stringify(value), { headers: { "Content-Type": "application/json" } })
        );
      })
      .catch(noop); // storage full or disabled: only renewals are lost, not subscriptions
  }

  // -- start-up: config + service worker, without asking anything ------------------------

  var state = { config: null, registration: null };

  function fetchConfig() {
    var url = options.base + "/sdk/" + encodeURIComponent(options.partner) + "/config";
    return window.fetch(url, { credentials: "omit" }).then(
      function (response) {
        if (!response.ok) {
          throw PushcampError("config", "pushcamp has no configuration for partner " +
            JSON.stringify(options.partner) + " (HTTP " + response.status + ")");
        }
        return response.json();
      },
      function (cause) {
        // A CORS refusal looks exactly like a network failure from here.
        throw PushcampError("network", "could not reach pushcamp at " + options.base +
          ", or it does not allow this site's origin (pushcamp partners set-site): " +
          describe(cause), cause);
      }
    );
  }

  function registerWorker() {
    var opts = options.scope ? { scope: options.scope } : undefined;
    return navigator.serviceWorker.register(options.sw, opts).catch(function (cause) {
      throw PushcampError("service-worker", "could not register the service worker " +
        options.sw + " (is it served from this site's origin?): " + describe(cause), cause);
    });
  }

  // pushManager.subscribe needs an active worker; a first registration is still installing.
  function whenActive(registration) {
    if (registration.active) return Promise.resolve(registration);
    var worker = registration.installing || registration.waiting;
    return new Promise(function (resolve, reject) {
      if (!worker) {
        reject(PushcampError("service-worker", "the service worker has no installing version"));
        return;
      }
      worker.addEventListener("statechange", function () {
        if (worker.state === "activated") resolve(registration);
        if (worker.state === "redundant") {
          reject(PushcampError("service-worker", "the service worker failed to install " +
            "(see the browser's service worker console)"));
        }
      });
    });
  }

  function start() {
    if (!options || !options.partner) {
      return Promise.reject(PushcampError("setup", 'the pushcamp <script> tag needs ' +
        'data-partner="YOUR_PARTNER_ID"'));
    }
    if (!isSupported()) return Promise.reject(unsupported());
    return Promise.all([fetchConfig(), registerWorker()])
      .then(function (results) {
        state.config = results[0];
        return whenActive(results[1]);
      })
      .then(function (registration) {
        state.registration = registration;
        return registration.pushManager.getSubscription();
      })
      .then(function (subscription) {
        if (subscription && Notification.permission === "granted") {
          storeWorkerConfig(state.registration, { endpoint: subscription.endpoint });
          visit(subscription); // not awaited: a visit ping never delays or fails start-up
        }
        return status();
      });
  }

  function visit(subscription) {
    return send("POST", withPartner(state.config.events_url, options.partner), {
      type: "visit",
      partner_id: options.partner,
      endpoint: subscription.endpoint,
    }, "the visit").catch(noop);
  }

  // Failures are reported by the calls that need the SDK, not on load. A start-up that
  // failed (pushcamp unreachable for a moment, the site not yet declared) is tried again
  // by the next call instead of failing every call until the page is reloaded.
  var ready = begin();

  function begin() {
    var attempt = start();
    attempt.failed = false;
    attempt.catch(function () { attempt.failed = true; });
    return attempt;
  }

  function whenReady() {
    if (ready.failed) {
      ready = begin();
      if (window.pushcamp) window.pushcamp.ready = ready;
    }
    return ready;
  }

  // -- the public API --------------------------------------------------------------------

  function status() {
    if (!state.registration) {
      return Promise.resolve({
        supported: isSupported(),
        permission: "Notification" in window ? Notification.permission : "unsupported",
        subscribed: false,
        endpoint: null,
      });
    }
    return state.registration.pushManager.getSubscription().then(function (subscription) {
      return {
        supported: true,
        permission: Notification.permission,
        subscribed: !!subscription,
        endpoint: subscription ? subscription.endpoint : null,
      };
    });
  }

  function askPermission() {
    return new Promise(function (resolve) {
      // Older Safari takes a callback and returns undefined; the others return a promise.
      var result = Notification.requestPermission(resolve);
      if (result && result.then) result.then(resolve, function () { resolve("default"); });
    });
  }

  function subscribe(args) {
    args = args || {};
    // Unsupported or misconfigured: ready has rejected with the reason; pass it on.
    if (!isSupported()) return whenReady().then(function () { throw unsupported(); });
    // Ask before anything asynchronous: browsers only show the prompt while the click
    // that called us still counts as a user gesture.
    var permission = Notification.permission === "granted"
      ? Promise.resolve("granted")
      : askPermission();
    var oldEndpoint = null;
    return Promise.all([permission, whenReady()])
      .then(function (results) {
        if (results[0] === "denied") {
          throw PushcampError("permission-denied", "notifications are blocked for this site " +
            "(the user can allow them again in the browser's site settings)");
        }
        if (results[0] !== "granted") {
          throw PushcampError("permission-dismissed", "the user did not allow notifications");
        }
        return state.registration.pushManager.getSubscription();
      })
      .then(function (existing) {
        var key = base64UrlToBytes(state.config.vapid_public_key);
        if (!existing) return pushSubscribe(key, args.timeout);
        if (sameBytes(existing.options && existing.options.applicationServerKey, key)) {
          return existing;
        }
        // Subscribed with another VAPID key (the partner's key was replaced): the browser
        // refuses a second key on one registration, so drop the old subscription first.
        oldEndpoint = existing.endpoint;
        return existing.unsubscribe().then(function () {
          return pushSubscribe(key, args.timeout);
        });
      })
      .then(function (subscription) {
        var json = subscription.toJSON();
        var body = {
          partner_id: options.partner,
          endpoint: json.endpoint,
          keys: { p256dh: json.keys.p256dh, auth: json.keys.auth },
          language: navigator.language || null,
          timezone: timeZone(),
          attributes: args.attributes || {},
        };
        if (oldEndpoint) body.old_endpoint = oldEndpoint;
        var url = withPartner(state.config.subscribe_url, options.partner);
        return send("POST", url, body, "the subscription").then(function () {
          storeWorkerConfig(state.registration, { endpoint: json.endpoint });
          return { endpoint: json.endpoint };
        });
      });
  }

  // The browser asks its push service (Google's for Chrome and Edge, Mozilla's, Apple's)
  // for an endpoint. A browser that cannot reach it may neither answer nor fail: Chromium
  // without Google's services waits for minutes. A late success is not lost: the next
  // subscribe() finds the subscription and registers it.
  var SUBSCRIBE_TIMEOUT_MS = 30000;

  function pushSubscribe(key, timeoutMs) {
    var ms = timeoutMs > 0 ? timeoutMs : SUBSCRIBE_TIMEOUT_MS;
    var timer;
    var attempt = state.registration.pushManager
      .subscribe({ userVisibleOnly: true, applicationServerKey: key })
      .catch(function (cause) {
        throw PushcampError("push-subscribe", "the browser's push service refused the " +
          "subscription: " + describe(cause), cause);
      });
    var late = new Promise(function (_resolve, reject) {
      timer = window.setTimeout(function () {
        reject(PushcampError("push-timeout", "the browser's push service did not answer " +
          "within " + ms / 1000 + " s (a Chromium that cannot reach Google's push service, " +
          "such as headless Chromium, never gets one)"));
      }, ms);
    });
    attempt.catch(noop); // it may still fail after the timeout has answered
    return Promise.race([attempt, late]).then(
      function (subscription) { window.clearTimeout(timer); return subscription; },
      function (error) { window.clearTimeout(timer); throw error; }
    );
  }

  function timeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
    } catch (e) {
      return null;
    }
  }

  function unsubscribe() {
    return whenReady()
      .then(function () {
        return state.registration.pushManager.getSubscription();
      })
      .then(function (subscription) {
        if (!subscription) return false;
        var endpoint = subscription.endpoint;
        // The browser first: the user's choice holds even if pushcamp cannot be reached
        // (it then learns it from the push service's 410 on the next send).
        return subscription.unsubscribe().then(function () {
          var url = withPartner(state.config.subscribe_url, options.partner);
          return send("DELETE", url, { partner_id: options.partner, endpoint: endpoint },
            "the unsubscription").then(function () { return true; });
        });
      });
  }

  // -- conversions -----------------------------------------------------------------------
  // The service worker keeps the signed token of the last notification clicked in this
  // browser (Cache API, per registration scope); a purchase is reported with it, and
  // pushcamp attributes it to that launch if it falls within the partner's window.

  function lastClick() {
    if (!window.caches) return Promise.resolve(null);
    var key = "/__pushcamp/click?scope=" + encodeURIComponent(state.registration.scope);
    return window.caches
      .open(CONFIG_CACHE)
      .then(function (cache) { return cache.match(key); })
      .then(function (response) { return response ? response.json() : null; })
      .catch(function () { return null; });
  }

  function invalid(message) {
    return Promise.reject(PushcampError("invalid", message));
  }

  function conversion(args) {
    args = args || {};
    var value = args.value;
    var currency = args.currency;
    var orderId = args.order_id;
    if (typeof value !== "number" || !isFinite(value) || value < 0) {
      return invalid("conversion({value}) must be a number, 0 or more");
    }
    if (typeof currency !== "string" || !/^[A-Z]{3}$/.test(currency)) {
      return invalid('conversion({currency}) must be an ISO 4217 code such as "EUR"');
    }
    if (orderId !== undefined && orderId !== null &&
        (typeof orderId !== "string" || orderId.length < 1 || orderId.length > 64)) {
      return invalid("conversion({order_id}) must be text of 1 to 64 characters");
    }
    return whenReady()
      .then(lastClick)
      .then(function (click) {
        if (!click || !click.token) return false; // no notification was clicked here
        var body = { type: "conversion", token: click.token, value: value, currency: currency };
        if (orderId !== undefined && orderId !== null) body.order_id = orderId;
        var url = withPartner(state.config.events_url, options.partner);
        return send("POST", url, body, "the conversion").then(function () { return true; });
      });
  }

  window.pushcamp = {
    version: VERSION,
    ready: ready,
    subscribe: subscribe,
    unsubscribe: unsubscribe,
    conversion: conversion,
    status: function () { return whenReady().then(status, status); },
    isSupported: isSupported,
  };
})(window);
