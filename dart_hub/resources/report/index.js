// dart-hub report index: filter, sort and search the problem list; state in the URL fragment.
// Rows are rendered by the server (the list works without script); this only hides and orders them.
// #problem=ID opens that problem's page (a link that can be shared).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("problems-data").textContent);
  var byIndex = {};
  data.forEach(function (p) { p.qlow = p.q.toLowerCase(); byIndex[p.i] = p; });
  var body = document.querySelector("#problem-list tbody");
  var rows = {};
  Array.prototype.forEach.call(body.querySelectorAll("tr[data-i]"), function (tr) { rows[tr.getAttribute("data-i")] = tr; });
  var search = document.getElementById("search");
  var outcome = document.getElementById("filter-outcome");
  var reason = document.getElementById("filter-reason");
  var sort = document.getElementById("sort");
  var shown = document.getElementById("shown-count");

  function readHash() {
    var state = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var kv = part.split("=");
      state[decodeURIComponent(kv[0])] = decodeURIComponent((kv[1] || "").replace(/\+/g, " "));
    });
    return state;
  }

  function writeHash() {
    var parts = [];
    if (search.value) parts.push("q=" + encodeURIComponent(search.value));
    if (outcome.value) parts.push("outcome=" + encodeURIComponent(outcome.value));
    if (reason.value) parts.push("reason=" + encodeURIComponent(reason.value));
    if (sort.value !== "index") parts.push("sort=" + encodeURIComponent(sort.value));
    var hash = parts.length ? "#" + parts.join("&") : "";
    try { history.replaceState(null, "", location.pathname + location.search + hash); } catch (e) { /* some browsers refuse on file:// */ }
  }

  function key(p, by) {
    if (by === "cut") return p.cut === null ? Infinity : p.cut;
    if (by === "cut-desc") return p.cut === null ? Infinity : -p.cut;
    if (by === "tokens") return -p.tokens;
    if (by === "rollouts") return -p.rollouts;
    if (by === "steps") return -p.steps;
    return p.i;
  }

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var list = data.filter(function (p) {
      if (outcome.value && p.outcome !== outcome.value) return false;
      if (reason.value && p.reason !== reason.value) return false;
      return words.every(function (w) { return p.qlow.indexOf(w) >= 0 || p.id.toLowerCase() === w; });
    });
    var by = sort.value;
    list.sort(function (a, b) { var d = key(a, by) - key(b, by); return d || a.i - b.i; });
    var visible = {};
    var fragment = document.createDocumentFragment();
    list.forEach(function (p) { visible[p.i] = true; fragment.appendChild(rows[p.i]); });
    data.forEach(function (p) { if (!visible[p.i]) { rows[p.i].hidden = true; fragment.appendChild(rows[p.i]); } else { rows[p.i].hidden = false; } });
    body.appendChild(fragment);
    shown.textContent = String(list.length);
    writeHash();
  }

  function openProblem(id) {
    var target = data.filter(function (p) { return p.id === id; })[0];
    if (target) { location.replace(target.file); return true; }
    return false;
  }

  // The fragment is the state: a shared link shows the same filtered list (or opens the problem).
  var first = true;

  function fromHash() {
    var anchor = location.hash.slice(1);
    if (anchor && anchor.indexOf("=") < 0 && document.getElementById(anchor)) { first = false; return; }  // a section link
    var state = readHash();
    if (state.problem && openProblem(state.problem)) return;
    var plain = !state.q && !state.outcome && !state.reason && (!state.sort || state.sort === "index");
    if (first && plain) { first = false; return; }  // the page as written is already this list
    first = false;
    search.value = state.q || "";
    outcome.value = state.outcome || "";
    reason.value = state.reason || "";
    sort.value = state.sort || "index";
    apply();
  }

  [search, outcome, reason, sort].forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.documentElement.setAttribute("data-ready", "1");
})();
