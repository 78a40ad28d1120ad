// The setup pages' small helpers: copy buttons and the rule builder. No inline handlers: the pages run
// under a Content-Security-Policy that allows only this file's script.
(function () {
  "use strict";

  function copyFrom(id, button) {
    var el = document.getElementById(id);
    if (!el) return;
    var text = "value" in el && el.tagName !== "CODE" ? el.value : el.textContent;
    var done = function () { button.textContent = "Copied"; };
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

  function ruleBuilder(box) {
    var rules = document.getElementById("rules");
    var key = document.getElementById("rule-key");
    var value = document.getElementById("rule-value");
    if (!rules || !key || !value) return;
    box.hidden = false;
    function add(newLine) {
      if (!value.value.trim()) { value.focus(); return; }
      var cond = key.value + " = " + value.value.trim();
      var text = rules.value.replace(/\s+$/, "");
      if (!text) rules.value = cond;
      else rules.value = text + (newLine ? "\n" : " and ") + cond;
      value.value = "";
      value.focus();
    }
    document.getElementById("rule-and").addEventListener("click", function () { add(false); });
    document.getElementById("rule-or").addEventListener("click", function () { add(true); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () { copyFrom(b.getAttribute("data-copy"), b); });
    });
    document.querySelectorAll(".rule-builder").forEach(ruleBuilder);
  });
})();
