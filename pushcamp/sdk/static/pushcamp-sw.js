/*! pushcamp service worker. Host this file at your site's origin as /pushcamp-sw.js, or add
 * pushcamp to a worker you already have with one line:
 *
 *   importScripts("https://PUSHCAMP/sdk/pushcamp-sw.js");
 *
 * It shows pushcamp's notifications and reports delivered / clicked / closed with the
 * signed token each push carries. Pushes whose payload is not pushcamp's (no "title" and
 * "token" strings) are left to the worker's other handlers. See docs/sdk.md.
 */
(function (self) {
  "use strict";

  var JSON_TYPE = "text/plain;charset=UTF-8"; // a CORS simple request: no preflight
  var CONFIG_CACHE = "pushcamp";

  function noop() {}

  // The payload pushcamp encrypts: {title, body, icon?, image?, badge?, url, actions?,
  // require_interaction?, renotify?, silent?, token, events_url, tag?}.
  function readPayload(data) {
    if (!data) return null;
    var payload;
    try {
      payload = data.json();
    } catch (e) {
      return null;
    }
    if (!payload || typeof payload.title !== "string" || typeof payload.token !== "string") {
      return null;
    }
    return payload;
  }

  // Only http(s) links are opened; anything else (javascript:, data:) falls back to the
  // site's start page, the worker's scope.
  function safeUrl(value) {
    try {
      var url = new URL(value, self.registration.scope);
      if (url.protocol === "https:" || url.protocol === "http:") return url.href;
    } catch (e) {
      // not a URL at all
    }
    return self.registration.scope;
  }

  // Up to two action buttons, [{title, url}]: each becomes {action: "0" | "1", title} for
  // showNotification, its link (checked like the main one) kept in the notification's data.
  var MAX_ACTIONS = 2;

  function readActions(value) {
    var actions = [];
    if (!Array.isArray(value)) return actions;
    for (var i = 0; i < value.length && actions.length < MAX_ACTIONS; i++) {
      var item = value[i];
      if (!item || typeof item.title !== "string" || typeof item.url !== "string") break;
      actions.push({ title: item.title, url: safeUrl(item.url) });
    }
    return actions;
  }

  // Statistics never break a notification: a failed report is dropped, not retried (the
  // token is single-use per type on the server anyway). ``action``: the button clicked.
  function report(data, type, action) {
    if (!data || !data.events_url || !data.token) return Promise.resolve();
    var body = { type: type, token: data.token };
    if (typeof action === "number") body.action = action;
    return fetch(data.events_url, {
      method: "POST",
      headers: { "Content-Type": JSON_TYPE },
      body: JSON.stringify(body),
      credentials: "omit",
      keepalive: true,
    }).then(noop, noop);
  }

  function isOurs(notification) {
    return !!(notification.data && notification.data.pushcamp === 1);
  }

  self.addEventListener("push", function (event) {
    var payload = readPayload(event.data);
    if (!payload) return;
    var actions = readActions(payload.actions);
    var data = {
      pushcamp: 1,
      url: safeUrl(payload.url || "/"),
      token: payload.token,
      events_url: payload.events_url,
      actions: actions.map(function (action) { return action.url; }),
    };
    var options = { body: payload.body || "", data: data };
    if (payload.icon) options.icon = payload.icon;
    if (payload.image) options.image = payload.image;
    if (payload.badge) options.badge = payload.badge;
    if (payload.tag) options.tag = payload.tag;
    if (actions.length) {
      options.actions = actions.map(function (action, index) {
        return { action: String(index), title: action.title };
      });
    }
    if (payload.require_interaction === true) options.requireInteraction = true;
    // A browser throws on renotify without a tag; pushcamp always sends one.
    if (payload.renotify === true && options.tag) options.renotify = true;
    if (payload.silent === true) options.silent = true;
    event.waitUntil(
      self.registration.showNotification(payload.title, options).then(function () {
        return report(data, "delivered");
      })
    );
  });

  function focusOrOpen(url) {
    return self.clients
      .matchAll({ type: "window", includeUncontrolled: true })
      .then(function (windows) {
        for (var i = 0; i < windows.length; i++) {
          if (windows[i].url === url && "focus" in windows[i]) return windows[i].focus();
        }
        return self.clients.openWindow ? self.clients.openWindow(url) : null;
      })
      .catch(noop);
  }

  // The button clicked: its index when ``event.action`` names one of the notification's
  // buttons ("0" or "1"), else undefined (the notification itself, or a browser that
  // shows no buttons).
  function clickedAction(event, data) {
    var links = data.actions || [];
    for (var i = 0; i < links.length; i++) {
      if (event.action === String(i)) return i;
    }
    return undefined;
  }

  self.addEventListener("notificationclick", function (event) {
    if (!isOurs(event.notification)) return;
    var data = event.notification.data;
    var action = clickedAction(event, data);
    var url = action === undefined ? data.url : data.actions[action];
    event.notification.close();
    // Open first: browsers allow openWindow only shortly after the click.
    event.waitUntil(
      Promise.all([focusOrOpen(url), report(data, "clicked", action), rememberClick(data)])
    );
  });

  self.addEventListener("notificationclose", function (event) {
    if (!isOurs(event.notification)) return;
    event.waitUntil(report(event.notification.data, "closed"));
  });

  // -- renewal ---------------------------------------------------------------------------
  // The browser may replace a subscription by itself (Firefox does; Chrome rarely fires
  // this). The page that subscribed is gone, so the SDK left what we need in the Cache API
  // under this worker's scope: partner, subscribe URL, VAPID key and the last endpoint.

  function configKey() {
    return "/__pushcamp/config?scope=" + encodeURIComponent(self.registration.scope);
  }

  // The last click's signed token, for pushcamp.conversion() on the site's pages: the
  // Cache API is shared with the pages of this origin. One entry per registration scope.
  function clickKey() {
    return "/__pushcamp/click?scope=" + encodeURIComponent(self.registration.scope);
  }

  function rememberClick(data) {
    if (!self.caches || !data.token || !data.events_url) return Promise.resolve();
    var value = { token: data.token, events_url: data.events_url, clicked_at: Date.now() };
    return self.caches
      .open(CONFIG_CACHE)
      .then(function (cache) {
        return cache.put(clickKey(), new Response(JSON.stringify(value), {
          headers: { "Content-Type": "application/json" },
        }));
      })
      .catch(noop); // storage full or disabled: only the conversion is lost
  }

  function loadConfig() {
    return self.caches
      .open(CONFIG_CACHE)
      .then(function (cache) { return cache.match(configKey()); })
      .then(function (response) { return response ? response.json() : null; });
  }

  function saveConfig(config) {
    return self.caches.open(CONFIG_CACHE).then(function (cache) {
      return cache.put(configKey(), new Response(JSON.stringify(config), {
        headers: { "Content-Type": "application/json" },
      }));
    });
  }

  function base64UrlToBytes(value) {
    var padded = value.replace(/-/g, "+").replace(/_/g, "/");
    padded += "===".slice((padded.length + 3) % 4);
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  // The renewal itself, apart from the event: pushcamp's tests call it with a subscription
  // of their own (headless Chromium cannot subscribe), and a site that renews subscriptions
  // by other means can call it too. Resolves once pushcamp has the new subscription.
  function subscriptionChanged(previous, next) {
    return loadConfig()
      .then(function (config) {
        if (!config) return null; // never subscribed through the SDK on this scope
        var renewed = next
          ? Promise.resolve(next)
          : self.registration.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey:
                (previous && previous.options && previous.options.applicationServerKey) ||
                base64UrlToBytes(config.vapid_public_key),
            });
        return renewed.then(function (subscription) {
          var json = subscription.toJSON();
          var oldEndpoint = (previous && previous.endpoint) || config.endpoint;
          var body = {
            partner_id: config.partner_id,
            endpoint: json.endpoint,
            keys: { p256dh: json.keys.p256dh, auth: json.keys.auth },
            language: self.navigator.language || null,
            timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || null,
          };
          if (oldEndpoint && oldEndpoint !== json.endpoint) body.old_endpoint = oldEndpoint;
          return fetch(config.subscribe_url, {
            method: "POST",
            headers: { "Content-Type": JSON_TYPE },
            body: JSON.stringify(body),
            credentials: "omit",
            keepalive: true,
          }).then(function (response) {
            if (!response.ok) throw new Error("pushcamp answered HTTP " + response.status);
            config.endpoint = json.endpoint;
            return saveConfig(config);
          });
        });
      });
  }

  self.addEventListener("pushsubscriptionchange", function (event) {
    event.waitUntil(
      // No one to tell from here; the site's next subscribe() posts it again.
      subscriptionChanged(event.oldSubscription, event.newSubscription).catch(noop)
    );
  });

  self.pushcamp = { version: "1", subscriptionChanged: subscriptionChanged };
})(self);
