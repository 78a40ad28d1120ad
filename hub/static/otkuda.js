/* Otkuda call-tracking snippet. Inserted after the page's load event by the tag the hub gives each site
   (hub/public.py, snippet_tag), which names the site and the hub in data-site and data-hub.
   Shows the visitor the tracking number the hub reserved for their session instead of the site's own
   numbers, each occurrence in the shape the site wrote it. If the hub is slow or unreachable the page keeps
   its own numbers and nothing else changes. */
(function (w, d) {
  "use strict";
  var me = d.currentScript || d.querySelector("script[data-site][data-hub]");
  var SITE = me && me.getAttribute("data-site"), HUB = ((me && me.getAttribute("data-hub")) || "").replace(/\/+$/, "");
  if (!SITE || !HUB || (w.Otkuda && w.Otkuda.site === SITE)) return; // misconfigured or loaded twice
  var cfg = w.OtkudaConfig || {};
  var TIMEOUT = cfg.timeout || 3000;
  var COOKIE = "otkuda_vid";
  var KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid", "gbraid", "wbraid", "yclid"];
  var api = (w.Otkuda = { site: SITE, status: "pending", number: null, promo: null });
  var callbacks = [], rules = [], forms = [], attrs = [], roots = [], observer = null, beatTimer = null;
  var state = null, sent = "", seq = 0, waiting = 0, shortest = 1, vid;
  var SKIP = { SCRIPT: 1, STYLE: 1, NOSCRIPT: 1, TEXTAREA: 1, INPUT: 1, SELECT: 1, OPTION: 1, TEMPLATE: 1 };
  // Elements a line does not break at: a number split across them is still one number.
  var INLINE = {};
  "A ABBR B BDI BDO CITE CODE DATA DFN EM FONT I KBD LABEL MARK NOBR Q S SAMP SMALL SPAN STRONG SUB SUP TIME U VAR".split(" ").forEach(function (t) { INLINE[t] = 1; });
  // Between two digits: one separator (typeset dashes, minus sign, any space) or a bracket with one on each side.
  var SEP = "[\\s.\\-\\u2010-\\u2015\\u2212]";
  var TOKEN = new RegExp("\\+?\\(?\\d(?:(?:" + SEP + "?[()]" + SEP + "?|" + SEP + ")?\\d)*", "g");
  var WORD = /[\p{L}\p{N}_]/u;
  var LABEL = /(?:№|#|ИНН|ОГРН|ОГРНИП|КПП|БИК|ОКПО|ОКТМО)[\s:.]*$/i;
  var MONEY = /^\s*(?:[₽$€£¥%]|руб|р\.|rub|usd|eur|тыс|млн|млрд)/i;

  function cookie(name) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function random() {
    var a = new Uint8Array(16), s = "";
    w.crypto.getRandomValues(a);
    for (var i = 0; i < a.length; i++) s += ("0" + a[i].toString(16)).slice(-2);
    return s;
  }
  function visitorId() {
    // Anything but 128 random bits in our format may be guessable (or planted): replace it.
    var v = cookie(COOKIE);
    if (!/^[0-9a-f]{32}$/.test(v || "")) v = random();
    d.cookie = COOKIE + "=" + v + "; path=/; max-age=63072000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    return v;
  }
  function endpoint(path) { return HUB + "/t/v1/" + encodeURIComponent(SITE) + "/" + path; }
  function beacon(path, body) {
    try { if (navigator.sendBeacon) navigator.sendBeacon(endpoint(path), JSON.stringify(body)); } catch (e) { /* best effort */ }
  }
  function post(path, body, late) {
    // Past the timeout the page keeps its own numbers; an answer after that goes only to late().
    return new Promise(function (resolve) {
      var open = true, timer = setTimeout(function () { open = false; resolve(false); }, TIMEOUT);
      // text/plain keeps this a "simple" request: no CORS preflight round trip.
      fetch(endpoint(path), {
        method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "text/plain" }, credentials: "omit", mode: "cors"
      }).then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; }).then(function (res) {
        clearTimeout(timer);
        if (open) resolve(res);
        else if (late) late(res);
      });
    });
  }
  function marks(url) {
    var out = {}, q;
    try { q = new URL(url).searchParams; } catch (e) { return out; }
    KEYS.forEach(function (k) { var v = q.get(k); if (v) out[k] = v.slice(0, 255); });
    return out;
  }
  function landing() {
    // The navigation entry keeps the URL the visitor arrived at, even after the site cleaned it.
    try { var n = performance.getEntriesByType("navigation")[0]; if (n && n.name) return n.name; } catch (e) { /* old browser */ }
    return location.href;
  }

  // --- finding the site's numbers ---------------------------------------------------------------------
  function phoneLike(t, s, e, local) {
    var g = t.slice(s, e).match(/\d+/g), i;
    if (WORD.test(t.charAt(s - 1)) || LABEL.test(t.slice(Math.max(0, s - 12), s))) return false;
    var after = t.slice(e, e + 8);
    if (WORD.test(after.charAt(0)) || /^[.,]\d/.test(after) || MONEY.test(after)) return false;
    if (local && g.length < 2) return false;
    for (i = 1; i < g.length; i++) if (g[i].length < 2) return false;
    // 1-3 digits then groups of three is how amounts are written, not phone numbers.
    for (i = 1; i < g.length && g[i].length === 3; i++);
    return !(g.length > 2 && i === g.length);
  }
  function reshape(text, to, display) {
    // Digit for digit into the site's own shape; the template only when the digit counts differ.
    var j = 0;
    if (!to || to.length !== text.replace(/\D/g, "").length) return display;
    return text.replace(/\d/g, function () { return to.charAt(j++); });
  }
  function lead(tok) {
    // The form of ours that tok starts with, and where it ends, if the number ends there.
    var digits = tok.replace(/\D/g, ""), i, f, e, k, rest;
    for (i = 0; i < forms.length; i++) {
      f = forms[i];
      if (digits.lastIndexOf(f.from, 0) !== 0) continue;
      for (e = 0, k = 0; k < f.from.length; e++) if (tok.charCodeAt(e) >= 48 && tok.charCodeAt(e) <= 57) k++;
      rest = tok.slice(e);
      // A number that continues is not ours; another whole number after a space may follow it.
      if (!rest || (/^\s\(?\d/.test(rest) && rest.replace(/\D/g, "").length >= 7)) return { f: f, e: e };
    }
    return null;
  }
  function find(t) {
    var out = [], m, tok, at, hit, sp, rest, cut, gap = /\s(?=\(?\d)/g;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(t))) {
      tok = m[0]; at = m.index;
      while (tok && tok.replace(/\D/g, "").length >= shortest) {
        hit = lead(tok);
        if (!hit) {
          // Someone else's whole number may come first, ours after a space.
          gap.lastIndex = 0;
          while ((sp = gap.exec(tok)) && !(tok.slice(0, sp.index).replace(/\D/g, "").length >= 7 && lead(tok.slice(sp.index + 1))));
          if (!sp) break;
          at += sp.index + 1; tok = tok.slice(sp.index + 1);
          continue;
        }
        if (phoneLike(t, at, at + hit.e, hit.f.local)) {
          out.push({ s: at, e: at + hit.e, v: reshape(t.slice(at, at + hit.e), hit.f.to, hit.f.number.display) });
        }
        rest = tok.slice(hit.e); cut = rest.length - rest.replace(/^\s+/, "").length;
        at += hit.e + cut; tok = rest.slice(cut);
      }
    }
    return out;
  }
  function swapString(v) {
    var hits = find(v);
    for (var i = hits.length - 1; i >= 0; i--) v = v.slice(0, hits[i].s) + hits[i].v + v.slice(hits[i].e);
    return v;
  }
  function swapRun(nodes) {
    // The text of an inline run as one string; each match is written back into the nodes it came from.
    var t = "", starts = [], vals = [], i, h, a, x, y, same;
    for (i = 0; i < nodes.length; i++) { starts.push(t.length); vals.push(nodes[i].nodeValue); t += vals[i]; }
    if (t.length < 7 || !/\d/.test(t)) return;
    var hits = find(t);
    for (h = hits.length - 1; h >= 0; h--) {
      same = hits[h].v.length === hits[h].e - hits[h].s;
      for (i = 0; i < nodes.length; i++) {
        a = starts[i]; x = Math.max(hits[h].s, a); y = Math.min(hits[h].e, a + nodes[i].nodeValue.length);
        if (x >= y) continue;
        vals[i] = vals[i].slice(0, x - a) + (same ? hits[h].v.slice(x - hits[h].s, y - hits[h].s) : x === hits[h].s ? hits[h].v : "") + vals[i].slice(y - a);
      }
    }
    for (i = 0; i < nodes.length; i++) if (vals[i] !== nodes[i].nodeValue) nodes[i].nodeValue = vals[i];
  }
  function swapAttr(el, name) {
    var v = el.getAttribute(name), tel, nv;
    if (!v || !/\d/.test(v)) return;
    if (name === "href") {
      tel = /^\s*tel:(.*)$/i.exec(v);
      if (!tel) return;
      try { v = decodeURIComponent(tel[1]); } catch (e) { v = tel[1]; }
      nv = swapString(v);
      if (nv !== v) el.setAttribute(name, "tel:" + nv);
      return;
    }
    nv = swapString(v);
    if (nv !== v) el.setAttribute(name, nv);
  }

  // --- walking the page ---------------------------------------------------------------------------------
  function ignored(n) {
    var el = n && (n.nodeType === 1 ? n : n.parentElement);
    return el && (SKIP[el.nodeName] || (el.closest && el.closest("[data-otkuda-ignore]")));
  }
  function block(n) {
    n = n.parentNode;
    while (n && n.nodeType === 1 && INLINE[n.nodeName]) n = n.parentNode;
    return n;
  }
  function element(el) {
    if (rules.length) {
      if (el.nodeName === "A") swapAttr(el, "href");
      for (var i = 0; i < attrs.length; i++) swapAttr(el, attrs[i]);
    }
    if (api.promo && el.hasAttribute("data-otkuda-promo")) el.textContent = api.promo;
    if (el.shadowRoot) follow(el.shadowRoot);
  }
  function scan(root) {
    if (root.nodeType === 9) root = root.body;
    if (!root || ignored(root)) return;
    if (root.nodeType === 3 || (root.nodeType === 1 && INLINE[root.nodeName])) root = block(root) || root;
    if (root.nodeType === 1) element(root);
    // No filter callback: calling into JS for every node would cost more than the rest of the scan.
    var tw = d.createTreeWalker(root, 5), n = tw.nextNode(), b, run = [], key = null;
    function flush() { if (run.length && rules.length) swapRun(run); run = []; key = null; }
    while (n) {
      if (n.nodeType === 3) {
        if ((b = block(n)) !== key) { flush(); key = b; }
        run.push(n);
      } else if (SKIP[n.nodeName] || n.hasAttribute("data-otkuda-ignore")) {
        flush();
        while (!(n = tw.nextSibling()) && tw.parentNode());
        continue;
      } else {
        if (!INLINE[n.nodeName]) flush();
        element(n);
      }
      n = tw.nextNode();
    }
    flush();
  }
  function follow(sr) {
    // Open shadow roots (booking and chat widgets): scanned now and watched by the same observer.
    if (roots.indexOf(sr) < 0) { roots.push(sr); if (observer) observer.observe(sr, OPTS); }
    scan(sr);
  }
  var OPTS = { childList: true, subtree: true, characterData: true };
  function handle(records) {
    var seen = [];
    records.forEach(function (r) {
      var list = r.type === "characterData" ? [r.target] : r.addedNodes;
      for (var i = 0; i < list.length; i++) {
        if (list[i].nodeType !== 1 && list[i].nodeType !== 3) continue;
        var t = list[i].nodeType === 3 || INLINE[list[i].nodeName] ? block(list[i]) : list[i];
        if (t && t.isConnected && seen.indexOf(t) < 0) { seen.push(t); scan(t); }
      }
    });
  }
  function quietly(fn) {
    // Our own edits must not wake the observer; what the page changed meanwhile is still handled.
    var pending = observer ? observer.takeRecords() : [];
    if (observer) observer.disconnect();
    try { handle(pending); fn(); } finally { if (observer) watch(); }
  }
  function watch() {
    observer.observe(d.body, OPTS);
    roots.forEach(function (r) { observer.observe(r, OPTS); });
  }
  function observe() {
    if (observer || !w.MutationObserver || !d.body) return;
    observer = new MutationObserver(function (records) { quietly(function () { handle(records); }); });
    watch();
  }

  // --- talking to the hub -----------------------------------------------------------------------------
  function notify() {
    var detail = { number: api.number, promo_code: api.promo, session_id: state && state.session_id };
    callbacks.forEach(function (fn) { try { fn(detail); } catch (e) { /* a site's callback must not stop us */ } });
    try { d.dispatchEvent(new CustomEvent("otkuda:number", { detail: detail })); } catch (e) { /* old browsers */ }
  }
  function compile(list) {
    // Every written form of every number to replace, longest first: "8495…" before "495…".
    var out = [];
    list.forEach(function (r) {
      r.match.forEach(function (from, k) { out.push({ from: from, to: r.to && r.to[k], number: r.number }); });
      if (r.local) out.push({ from: r.local[0], to: r.local[1], number: r.number, local: 1 });
    });
    out.sort(function (a, b) { return b.from.length - a.from.length; });
    shortest = out.length ? out[out.length - 1].from.length : 1;
    return out;
  }
  function apply(res) {
    if (!res || !res.session_id) { if (!state) api.status = "failed"; return; }
    var fresh = (res.replace || []).slice(), old = rules;
    // A re-issued number must also replace the one shown before it, in the shape it was shown in.
    if (api.number && res.number && api.number.e164 !== res.number.e164) {
      old.forEach(function (o) {
        fresh.forEach(function (n) {
          if (o.business !== n.business || o.prev || !o.to) return;
          var from = [], to = [];
          o.to.forEach(function (t, k) { if (t) { from.push(t); to.push(n.to && n.to[k]); } });
          fresh.push({ match: from, to: to, number: res.number, prev: 1, local: o.local && n.local && [o.local[1], n.local[1]] });
        });
      });
    }
    state = res;
    api.promo = res.promo_code || null;
    attrs = (res.attributes || []).filter(function (a) { return !/^on/i.test(a); });
    rules = fresh;
    forms = compile(fresh);
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
  function visit(url) {
    var mine = ++seq, body = {
      visitor_id: vid, url: url.slice(0, 4096), referrer: d.referrer.slice(0, 4096) || null,
      screen: w.screen ? screen.width + "x" + screen.height : null,
      // Cookies of other scripts are sent only in their expected shape: a bad one must not cost the visit.
      ym_uid: /^\d{1,64}$/.test(cookie("_ym_uid") || "") ? cookie("_ym_uid") : null,
      ga: (cookie("_ga") || "").slice(0, 128) || null
    }, m = marks(url);
    sent = JSON.stringify(m);
    for (var k in m) body[k] = m[k];
    waiting++;
    return post("visit", body, unseen).then(function (res) { if (res !== false) waiting--; if (mine === seq) apply(res); });
  }
  function unseen(res) {
    // An answer after the timeout reserved a number nobody is shown: give it back at once.
    waiting--;
    if (res && res.session_id) beacon("release", { visitor_id: vid });
  }
  function navigated() {
    // An SPA route carrying new ad marks is a new landing; a URL cleaned of its marks is not.
    var m = marks(location.href);
    if (vid && Object.keys(m).length && JSON.stringify(m) !== sent) visit(location.href);
  }
  function beat() {
    if (!state || d.visibilityState === "hidden") return;
    post("heartbeat", { session_id: state.session_id, visitor_id: vid }).then(function (res) {
      if (res && res.live === false) visit(location.href); // the hold ran out while the tab slept: take a new one
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
    if (state) beacon("release", { session_id: state.session_id });
    if (waiting) beacon("release", { visitor_id: vid }); // still no answer: it may come after we are gone
  });
  ["pushState", "replaceState"].forEach(function (k) {
    var orig = history[k];
    if (typeof orig !== "function") return;
    history[k] = function () {
      var out = orig.apply(this, arguments);
      try { navigated(); } catch (e) { /* never break the site's router */ }
      return out;
    };
  });
  w.addEventListener("popstate", navigated);

  try { vid = visitorId(); } catch (e) { api.status = "failed"; return; }
  if (!w.fetch) { api.status = "failed"; return; }
  visit(landing()).catch(function () { api.status = "failed"; });
})(window, document);
