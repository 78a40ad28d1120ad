/* Otkuda call-tracking snippet. Load with <script async src="HUB/t/v1/SITE_KEY.js"></script>.
   Shows the visitor the tracking number the hub reserved for their session instead of the site's own
   numbers. If the hub is slow or unreachable the page keeps its own numbers and nothing else changes. */
(function (w, d) {
  "use strict";
  var SITE = "__OTKUDA_SITE_KEY__", HUB = "__OTKUDA_HUB__";
  var cfg = w.OtkudaConfig || {};
  var TIMEOUT = cfg.timeout || 4000;
  var COOKIE = "otkuda_vid";
  if (w.Otkuda && w.Otkuda.site === SITE) return; // loaded twice
  var api = (w.Otkuda = { site: SITE, status: "pending", number: null, promo: null });
  var callbacks = [], rules = [], seen = [], observer = null, beatTimer = null, state = null;
  var SEP = "[\\s\\u00a0().\\-]*";
  var SKIP = { SCRIPT: 1, STYLE: 1, NOSCRIPT: 1, TEXTAREA: 1, INPUT: 1, SELECT: 1, OPTION: 1 };

  function cookie(name) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function visitorId() {
    var v = cookie(COOKIE);
    if (!v || !/^[A-Za-z0-9_.\-]{8,64}$/.test(v)) {
      var a = new Uint8Array(16), s = "";
      (w.crypto || w.msCrypto).getRandomValues(a);
      for (var i = 0; i < a.length; i++) s += ("0" + a[i].toString(16)).slice(-2);
      v = s;
    }
    // First-party, refreshed on each visit: two years.
    d.cookie = COOKIE + "=" + v + "; path=/; max-age=63072000; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
    return v;
  }
  function post(path, body) {
    var url = HUB + "/t/v1/" + encodeURIComponent(SITE) + "/" + path;
    var ctrl = w.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctrl) ctrl.abort(); }, TIMEOUT);
    // text/plain keeps this a "simple" request: no CORS preflight round trip.
    return fetch(url, {
      method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "text/plain" },
      credentials: "omit", mode: "cors", signal: ctrl ? ctrl.signal : undefined
    }).then(function (r) {
      clearTimeout(timer);
      return r.ok ? r.json() : null;
    }).catch(function () { clearTimeout(timer); return null; });
  }
  function params() {
    var out = {}, q = new URLSearchParams(location.search);
    ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid", "gbraid", "wbraid", "yclid"]
      .forEach(function (k) { var v = q.get(k); if (v) out[k] = v.slice(0, 255); });
    return out;
  }

  function compile(list) {
    // One regex per tracking number: any written form of any business number it replaces.
    return list.map(function (r) {
      var alts = r.match.map(function (digits) { return digits.split("").join(SEP); });
      return {
        re: new RegExp("(^|[^\\d+])(\\+?\\(?(?:" + alts.join("|") + "))(?!\\d)", "g"),
        digits: r.match, number: r.number
      };
    });
  }
  function ignored(el) {
    return !el || SKIP[el.nodeName] || (el.closest && el.closest("[data-otkuda-ignore]"));
  }
  function swapText(node) {
    var t = node.nodeValue, out = t;
    if (!t || t.length < 7 || !/\d/.test(t)) return;
    for (var i = 0; i < rules.length; i++) {
      out = out.replace(rules[i].re, function (m, pre) { return pre + rules[i].number.display; });
    }
    if (out !== t) node.nodeValue = out;
  }
  function swapLink(a) {
    var href = a.getAttribute("href") || "", m = /^\s*tel:(.*)$/i.exec(href);
    if (!m) return;
    var digits = decodeURIComponent(m[1]).replace(/\D/g, "");
    for (var i = 0; i < rules.length; i++) {
      if (rules[i].digits.indexOf(digits) >= 0) { a.setAttribute("href", "tel:" + rules[i].number.e164); return; }
    }
  }
  function scan(root) {
    if (root && root.nodeType === 9) root = root.body;
    if (!root || ignored(root.nodeType === 1 ? root : root.parentElement)) return;
    if (root.nodeType === 3) { if (rules.length) swapText(root); return; }
    if (root.nodeType !== 1) return;
    var el = root;
    if (rules.length) {
      var tw = d.createTreeWalker(el, 4, {
        acceptNode: function (n) { return ignored(n.parentElement) ? 2 : 1; }
      }), n, nodes = [];
      while ((n = tw.nextNode())) nodes.push(n);
      nodes.forEach(swapText);
      var links = el.querySelectorAll ? el.querySelectorAll('a[href^="tel:" i]') : [];
      for (var i = 0; i < links.length; i++) if (!ignored(links[i])) swapLink(links[i]);
      if (el.nodeName === "A" && !ignored(el)) swapLink(el);
    }
    if (api.promo && el.querySelectorAll) {
      var promos = el.querySelectorAll("[data-otkuda-promo]");
      for (var j = 0; j < promos.length; j++) promos[j].textContent = api.promo;
      if (el.hasAttribute && el.hasAttribute("data-otkuda-promo")) el.textContent = api.promo;
    }
  }
  function quietly(fn) {
    // Our own edits must not wake the observer.
    if (observer) observer.disconnect();
    try { fn(); } finally { if (observer) watch(); }
  }
  function watch() {
    observer.observe(d.body, { childList: true, subtree: true, characterData: true });
  }
  function observe() {
    if (observer || !w.MutationObserver || !d.body) return;
    observer = new MutationObserver(function (records) {
      quietly(function () {
        records.forEach(function (r) {
          if (r.type === "characterData") scan(r.target);
          else for (var i = 0; i < r.addedNodes.length; i++) scan(r.addedNodes[i]);
        });
      });
    });
    watch();
  }
  function notify() {
    var detail = { number: api.number, promo_code: api.promo, session_id: state && state.session_id };
    callbacks.forEach(function (fn) { try { fn(detail); } catch (e) { /* a site's callback must not stop us */ } });
    try { d.dispatchEvent(new CustomEvent("otkuda:number", { detail: detail })); } catch (e) { /* old browsers */ }
  }
  function apply(res) {
    if (!res || !res.session_id) { api.status = "failed"; return; }
    state = res;
    api.promo = res.promo_code || null;
    var fresh = (res.replace || []).map(function (r) { return r; });
    // A re-issued number must also replace the one shown before it.
    if (api.number && res.number && api.number.e164 !== res.number.e164) {
      fresh.push({ match: seen.slice(), number: res.number });
    }
    if (res.number) {
      seen = fresh.reduce(function (acc, r) { return acc.concat(r.match); }, []);
      seen.push(res.number.e164.replace(/\D/g, ""));
    }
    rules = compile(fresh);
    api.number = res.number || null;
    api.status = "ready";
    ready(function () {
      quietly(function () { scan(d); });
      observe();
      if (api.number) notify(); // no number applies (e.g. no pool for this channel): nothing to announce
    });
    schedule(res.heartbeat_seconds);
  }
  function ready(fn) {
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", fn);
    else fn();
  }
  function visit() {
    var body = {
      visitor_id: vid, url: location.href.slice(0, 4096), referrer: d.referrer.slice(0, 4096) || null,
      screen: w.screen ? screen.width + "x" + screen.height : null,
      // Cookies of other scripts are sent only in their expected shape: a bad one must not cost the visit.
      ym_uid: /^\d{1,64}$/.test(cookie("_ym_uid") || "") ? cookie("_ym_uid") : null,
      ga: (cookie("_ga") || "").slice(0, 128) || null
    }, p = params();
    for (var k in p) body[k] = p[k];
    return post("visit", body).then(apply);
  }
  function beat() {
    if (!state || d.visibilityState === "hidden") return;
    post("heartbeat", { session_id: state.session_id }).then(function (res) {
      if (res && res.live === false) visit(); // the hold ran out while the tab slept: take a new one
      else if (res && res.number) apply(res); // moved from the fallback number to a pool number
    });
  }
  function schedule(seconds) {
    if (beatTimer) clearInterval(beatTimer);
    beatTimer = setInterval(beat, (cfg.heartbeat || seconds || 60) * 1000);
  }

  api.rescan = function () { if (d.body) quietly(function () { scan(d); }); };
  api.onNumber = function (fn) {
    if (typeof fn !== "function") return;
    callbacks.push(fn);
    if (api.number) { try { fn({ number: api.number, promo_code: api.promo, session_id: state.session_id }); } catch (e) { /* ignore */ } }
  };
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "visible") beat(); });
  w.addEventListener("pagehide", function () {
    if (!state) return;
    var url = HUB + "/t/v1/" + encodeURIComponent(SITE) + "/release", body = JSON.stringify({ session_id: state.session_id });
    try {
      if (navigator.sendBeacon) navigator.sendBeacon(url, body);
    } catch (e) { /* leaving anyway */ }
  });

  var vid;
  try { vid = visitorId(); } catch (e) { api.status = "failed"; return; }
  if (!w.fetch) { api.status = "failed"; return; }
  visit().catch(function () { api.status = "failed"; });
})(window, document);
