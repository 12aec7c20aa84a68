// songshard report: the samples table. Reads window.SONGSHARD_INDEX (data/index.js), filters,
// sorts and pages it in the browser; only the visible page is put in the DOM, so 100,000 rows
// stay responsive.
//
// Filter syntax (terms separated by spaces, all must match):
//   word            the text appears in any column
//   col:word        the text appears in that column (genre:pop, tier:high, split:valid)
//   col=word        the column equals word exactly (split=train)
//   col>N, col<N    numeric bounds (duration>60, bpm<100, language_probability>0.9)
//   has:page        rows that have a sample page
(function () {
  "use strict";
  var D = window.SONGSHARD_INDEX;
  var cols = D.columns, rows = D.rows, dicts = D.dicts;
  var colIndex = {};
  cols.forEach(function (c, i) { colIndex[c.name] = i; });
  colIndex.has = -1;  // pseudo-column: "has:page" keeps rows that have a sample page
  var hasPage = new Uint8Array(rows.length);
  D.pages.forEach(function (i) { hasPage[i] = 1; });
  var state = { order: null, view: null, sortCol: -1, sortDir: 1, page: 0, size: 100 };
  var hay = null;  // per-row lower-case text, built on the first text filter

  function value(row, j) {
    var c = cols[j], v = row[j];
    return c.kind === "cat" ? dicts[c.name][v] : v;
  }
  function text(row, j) {
    var v = value(row, j);
    return v === null || v === undefined ? "" : String(v);
  }
  function esc(s) {
    return s.replace(/[&<>"']/g, function (ch) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch];
    });
  }
  function buildHay() {
    hay = new Array(rows.length);
    for (var i = 0; i < rows.length; i++) {
      var parts = [];
      for (var j = 0; j < cols.length; j++) parts.push(text(rows[i], j));
      hay[i] = parts.join("\u0001").toLowerCase();
    }
  }
  function parseTerm(term) {
    var m = /^([a-z_()]+)\s*(:|=|>=|<=|>|<)(.*)$/i.exec(term);
    if (!m) return { any: term };
    var name = m[1].toLowerCase();
    if (name === "tier" || name === "musicality") name = "tier";
    if (name === "lang") name = "language";
    if (name === "p(lang)") name = "language_probability";
    if (!(name in colIndex)) return { any: term };
    return { col: colIndex[name], op: m[2], arg: m[3] };
  }
  function matches(i, t) {
    if (t.any !== undefined) return hay[i].indexOf(t.any) >= 0;
    if (t.col === -1) return hasPage[i] === 1;  // has:page
    var v = value(rows[i], t.col);
    if (t.op === ":") return v !== null && String(v).toLowerCase().indexOf(t.arg) >= 0;
    if (t.op === "=") return v !== null && String(v).toLowerCase() === t.arg;
    var x = parseFloat(t.arg);
    if (v === null || isNaN(x)) return false;
    if (t.op === ">") return v > x;
    if (t.op === "<") return v < x;
    if (t.op === ">=") return v >= x;
    return v <= x;
  }
  function applyFilter() {
    var q = document.getElementById("filter").value.trim().toLowerCase();
    var terms = q ? q.split(/\s+/).map(parseTerm) : [];
    ["split", "genre", "tier", "language"].forEach(function (name) {
      var sel = document.getElementById("f-" + name);
      if (sel && sel.value !== "") terms.push({ col: colIndex[name], op: "=", arg: sel.value.toLowerCase() });
    });
    if (terms.some(function (t) { return t.any !== undefined; }) && hay === null) buildHay();
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var ok = true;
      for (var k = 0; k < terms.length && ok; k++) ok = matches(i, terms[k]);
      if (ok) out.push(i);
    }
    state.view = out;
    sortView();
    state.page = 0;
    render();
  }
  function sortView() {
    var j = state.sortCol, dir = state.sortDir;
    if (j < 0) return;
    var kind = cols[j].kind;
    state.view.sort(function (a, b) {
      var x = value(rows[a], j), y = value(rows[b], j);
      if (x === null || x === "") return (y === null || y === "") ? a - b : 1;  // blanks last
      if (y === null || y === "") return -1;
      var c = kind === "num" ? x - y : String(x).localeCompare(String(y));
      return c !== 0 ? c * dir : a - b;
    });
  }
  function cell(i, j) {
    var c = cols[j], v = value(rows[i], j);
    if (c.name === "key" && hasPage[i]) return '<td><a href="samples/' + esc(String(v)) + '.html">' + esc(String(v)) + "</a></td>";
    if (c.kind === "num") return '<td class="num">' + (v === null ? "–" : esc(String(v))) + "</td>";
    var s = text(rows[i], j);
    return '<td title="' + esc(s) + '">' + esc(s) + "</td>";
  }
  function render() {
    var view = state.view, size = state.size;
    var pages = Math.max(1, Math.ceil(view.length / size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * size, end = Math.min(view.length, start + size), html = [];
    for (var r = start; r < end; r++) {
      var i = view[r], tds = [];
      for (var j = 0; j < cols.length; j++) tds.push(cell(i, j));
      html.push("<tr>" + tds.join("") + "</tr>");
    }
    document.querySelector("#samples tbody").innerHTML = html.join("");
    document.getElementById("rowcount").textContent = view.length.toLocaleString("en");
    document.getElementById("rowcount").setAttribute("data-count", view.length);
    document.getElementById("pageinfo").textContent =
      view.length ? (start + 1) + "–" + end + " (page " + (state.page + 1) + " of " + pages + ")" : "no rows";
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#samples th").forEach(function (th, j) {
      th.className = (cols[j].kind === "num" ? "num " : "") +
        (j === state.sortCol ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : "");
    });
  }
  function header() {
    var tr = document.querySelector("#samples thead tr");
    tr.innerHTML = cols.map(function (c) { return "<th>" + esc(c.label) + "</th>"; }).join("");
    tr.querySelectorAll("th").forEach(function (th, j) {
      th.addEventListener("click", function () {
        state.sortDir = state.sortCol === j ? -state.sortDir : 1;
        state.sortCol = j;
        sortView();
        render();
      });
    });
  }
  function selects() {
    ["split", "genre", "tier", "language"].forEach(function (name) {
      var sel = document.getElementById("f-" + name);
      if (!sel) return;
      var opts = dicts[name].filter(function (v) { return v !== ""; }).slice().sort();
      sel.innerHTML = '<option value="">' + name + ": all</option>" +
        opts.map(function (v) { return '<option value="' + esc(v) + '">' + esc(v) + "</option>"; }).join("");
      sel.addEventListener("change", applyFilter);
    });
  }
  function wire() {
    var timer = null, box = document.getElementById("filter");
    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(applyFilter, 120);  // debounce: one pass per pause in typing
    });
    box.addEventListener("change", function () { clearTimeout(timer); applyFilter(); });  // set by script or cleared
    document.getElementById("prev").addEventListener("click", function () { state.page--; render(); });
    document.getElementById("next").addEventListener("click", function () { state.page++; render(); });
    document.getElementById("pagesize").addEventListener("change", function (e) {
      state.size = parseInt(e.target.value, 10); render();
    });
    document.getElementById("pagesonly").addEventListener("change", function (e) {
      box.value = box.value.replace(/\s*has:page/g, "") + (e.target.checked ? " has:page" : "");
      applyFilter();
    });
    var m = /[#&]q=([^&]*)/.exec(location.hash);
    if (m) box.value = decodeURIComponent(m[1]);
  }
  document.getElementById("total").textContent = rows.length.toLocaleString("en");
  header();
  selects();
  wire();
  applyFilter();
})();
