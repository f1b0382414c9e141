/* js-legacy.js: a plain, dependency-free helper loaded before js/app.js.
   Its name sorts right next to the js/ folder, which is deliberate. */
(function () {
  "use strict";
  function formatBytes(n) {
    if (typeof n !== "number" || !isFinite(n)) return "";
    if (n < 1024) return n + " B";
    var units = ["KiB", "MiB", "GiB"];
    var v = n / 1024;
    var i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return v.toFixed(v < 10 ? 1 : 0) + " " + units[i];
  }
  window.webseedLegacy = { formatBytes: formatBytes };
})();
