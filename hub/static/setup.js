// The setup pages' small helpers: copy buttons and the channel rule builder. No inline handlers: the pages run
// under a Content-Security-Policy that allows only this file's script.
(function () {
  "use strict";

  function copyFrom(id, button) {
    var el = document.getElementById(id);
    if (!el) return;
    var text = "value" in el && el.tagName !== "CODE" ? el.value : el.textContent;
    var done = function () { button.textContent = button.getAttribute("data-copied") || "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectAndCopy(el); done(); });
    } else {
      selectAndCopy(el);
      done();
    }
  }

  function selectAndCopy(el) {
    if (el.select) {
      el.select();
    } else {
      var range = document.createRange();
      range.selectNodeContents(el);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected for Ctrl+C */ }
  }

  // The rule builder: the rules as rows of conditions (all must hold) in rules (any may match), kept in
  // step with the plain text field the form submits ("key = value and key = value", one rule per line),
  // which is what a browser without scripts shows instead.
  var FLAGS = { has_gclid: true, has_yclid: true };

  function parseRules(text) {
    var rules = [];
    text.split("\n").forEach(function (line) {
      if (!line.trim()) return;
      var conds = [];
      line.split(/\s+and\s+/i).forEach(function (part) {
        var at = part.indexOf("=");
        if (at < 0) { conds.push({ key: part.trim(), value: "" }); return; }
        conds.push({ key: part.slice(0, at).trim().toLowerCase(), value: part.slice(at + 1).trim() });
      });
      rules.push(conds);
    });
    return rules;
  }

  function formatRules(rules) {
    return rules.map(function (conds) {
      return conds.filter(function (c) { return c.key && c.value; })
        .map(function (c) { return c.key + " = " + c.value; }).join(" and ");
    }).filter(function (line) { return line; }).join("\n");
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ruleBuilder(box) {
    var field = document.getElementById(box.getAttribute("data-for"));
    if (!field) return;
    var keys = JSON.parse(box.getAttribute("data-keys"));
    var t = JSON.parse(box.getAttribute("data-labels"));
    var rules = parseRules(field.value);
    var wrapper = field.closest("label");

    function sync() { field.value = formatRules(rules); }

    function button(cls, text, title, onClick) {
      var b = el("button", { type: "button", "class": cls + " secondary outline" }, text);
      if (title) { b.setAttribute("title", title); b.setAttribute("aria-label", title); }
      b.addEventListener("click", function () { onClick(); render(); sync(); });
      return b;
    }

    function valueInput(cond) {
      var input;
      if (FLAGS[cond.key]) {
        input = el("select", { "class": "cond-value", "aria-label": t.value });
        [["yes", t.yes], ["no", t.no]].forEach(function (o) {
          var opt = el("option", { value: o[0] }, o[1]);
          if (cond.value === o[0]) opt.selected = true;
          input.appendChild(opt);
        });
        if (cond.value !== "no") cond.value = "yes";
        input.addEventListener("change", function () { cond.value = input.value; sync(); });
      } else {
        input = el("input", { type: "text", "class": "cond-value", "aria-label": t.value, placeholder: t.placeholders[cond.key] || "" });
        input.value = cond.value;
        input.addEventListener("input", function () { cond.value = input.value.trim(); sync(); });
      }
      return input;
    }

    function render() {
      box.textContent = "";
      rules.forEach(function (conds, i) {
        var rule = el("fieldset", { "class": "rule" });
        rule.appendChild(el("legend", {}, i === 0 ? t.rule_first : t.rule_or));
        conds.forEach(function (cond, j) {
          var row = el("div", { "class": "cond" });
          row.appendChild(el("span", { "class": "and" }, j > 0 ? t.and : ""));
          var key = el("select", { "class": "cond-key", "aria-label": t.condition });
          keys.forEach(function (k) {
            var opt = el("option", { value: k }, t.keys[k] || k);
            if (k === cond.key) opt.selected = true;
            key.appendChild(opt);
          });
          key.addEventListener("change", function () {
            var wasFlag = !!FLAGS[cond.key];
            cond.key = key.value;
            if (wasFlag !== !!FLAGS[cond.key]) cond.value = "";
            render(); sync();
          });
          row.appendChild(key);
          row.appendChild(valueInput(cond));
          row.appendChild(button("cond-remove", "×", t.remove_condition, function () {
            conds.splice(j, 1);
            if (!conds.length) rules.splice(i, 1);
          }));
          rule.appendChild(row);
        });
        var tools = el("div", { "class": "rule-tools" });
        tools.appendChild(button("add-cond", t.add_condition, "", function () { conds.push({ key: keys[0], value: "" }); }));
        if (i > 0) tools.appendChild(button("rule-up", "↑", t.up, function () { rules.splice(i - 1, 0, rules.splice(i, 1)[0]); }));
        if (i < rules.length - 1) tools.appendChild(button("rule-down", "↓", t.down, function () { rules.splice(i + 1, 0, rules.splice(i, 1)[0]); }));
        tools.appendChild(button("rule-remove", t.remove_rule, "", function () { rules.splice(i, 1); }));
        rule.appendChild(tools);
        box.appendChild(rule);
      });
      if (!rules.length) box.appendChild(el("p", { "class": "muted" }, t.none));
      box.appendChild(button("add-rule", rules.length ? t.add_rule : t.add_first, "", function () {
        rules.push([{ key: keys[0], value: "" }]);
      }));
    }

    render();
    box.hidden = false;
    // The text field stays in the form (it is what is submitted) but out of sight.
    if (wrapper) wrapper.hidden = true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () { copyFrom(b.getAttribute("data-copy"), b); });
    });
    document.querySelectorAll(".rule-builder").forEach(ruleBuilder);
  });
})();
