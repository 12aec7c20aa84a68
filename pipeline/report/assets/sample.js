// songshard report: a sample page. Clicking anything with data-seek="SECONDS" (a section, a vocal
// region, a word) moves every player there; clicking elsewhere on the timeline seeks to that point.
// A red playhead and the current word follow the player that plays last. Zoom widens the timeline.
(function () {
  "use strict";
  var timeline = document.getElementById("timeline");
  var playhead = document.getElementById("playhead");
  var players = Array.prototype.slice.call(document.querySelectorAll("audio[data-track]"));
  var duration = timeline ? parseFloat(timeline.getAttribute("data-duration")) || 0 : 0;
  var current = players[0] || null;  // the player the timeline follows
  var words = Array.prototype.slice.call(document.querySelectorAll(".word[data-seek]"));
  var starts = words.map(function (w) { return parseFloat(w.getAttribute("data-seek")); });
  var lit = -1;

  function seek(t) {
    t = Math.max(0, Math.min(duration || t, t));
    players.forEach(function (p) { p.currentTime = t; });
    follow(t);
  }
  function wordAt(t) {  // last word starting at or before t (binary search over start times)
    var lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }
  function light(i) {
    if (i === lit) return;
    [document.getElementById("w" + lit), document.getElementById("tw" + lit)].forEach(function (el) {
      if (el) el.classList.remove("now");
    });
    lit = i;
    [document.getElementById("w" + i), document.getElementById("tw" + i)].forEach(function (el) {
      if (el) el.classList.add("now");
    });
  }
  function follow(t) {
    if (playhead && duration > 0) playhead.style.left = (100 * t / duration) + "%";
    light(wordAt(t));
  }
  function frame() {
    if (current && !current.paused) follow(current.currentTime);
    window.requestAnimationFrame(frame);
  }

  document.addEventListener("click", function (e) {
    var target = e.target.closest ? e.target.closest("[data-seek]") : null;
    if (target) {
      seek(parseFloat(target.getAttribute("data-seek")));
      return;
    }
    if (timeline && timeline.contains(e.target) && duration > 0) {
      var box = timeline.getBoundingClientRect();
      seek((e.clientX - box.left) / box.width * duration);
    }
  });
  players.forEach(function (p) {
    p.addEventListener("play", function () {
      current = p;
      players.forEach(function (q) { if (q !== p) q.pause(); });
    });
    p.addEventListener("seeked", function () { if (p === current) follow(p.currentTime); });
  });
  document.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = parseFloat(b.getAttribute("data-zoom"));
      var scroll = timeline.parentNode, centre = (scroll.scrollLeft + scroll.clientWidth / 2) / timeline.offsetWidth;
      timeline.style.width = (100 * z) + "%";
      scroll.scrollLeft = centre * timeline.offsetWidth - scroll.clientWidth / 2;
      document.querySelectorAll("[data-zoom]").forEach(function (o) { o.classList.toggle("on", o === b); });
    });
  });
  window.requestAnimationFrame(frame);
})();
