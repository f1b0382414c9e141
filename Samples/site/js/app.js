/* js/app.js: runs on load, proves JavaScript works, and lists the site's files. */
(function () {
  "use strict";

  function formatBytes(n) {
    if (window.webseedLegacy && window.webseedLegacy.formatBytes) {
      return window.webseedLegacy.formatBytes(n);
    }
    return typeof n === "number" ? n + " B" : "";
  }

  function writeMarker() {
    document.body.dataset.webseed = "loaded";
    if (!document.getElementById("webseed-marker")) {
      var marker = document.createElement("p");
      marker.id = "webseed-marker";
      marker.textContent = "webseed-sample-ok";
      document.body.appendChild(marker);
    }
  }

  function showStatus() {
    var status = document.getElementById("js-status");
    if (!status) return;
    status.textContent = "JavaScript ran at " + new Date().toLocaleTimeString() + ".";
    status.className = "status status-ok";
  }

  function renderFiles(list, files) {
    list.textContent = "";
    files.forEach(function (file) {
      var li = document.createElement("li");
      var link = document.createElement("a");
      // Relative URL: works at http://<id>.localhost:PORT/ and under /site/<id>/.
      link.href = file.path.split("/").map(encodeURIComponent).join("/");
      link.textContent = file.path;
      var size = document.createElement("span");
      size.className = "size";
      size.textContent = formatBytes(file.size);
      li.appendChild(link);
      li.appendChild(size);
      list.appendChild(li);
    });
  }

  function renderError(list, message) {
    list.textContent = "";
    var li = document.createElement("li");
    li.className = "muted";
    li.textContent = message;
    list.appendChild(li);
  }

  function loadFiles() {
    var list = document.getElementById("file-list");
    if (!list) return;
    if (typeof window.fetch !== "function") {
      renderError(list, "fetch() is not available in this browser.");
      return;
    }
    var request;
    try {
      request = window.fetch("assets.json", { cache: "no-cache" });
    } catch (e) {
      renderError(list, "Could not load assets.json: " + e.message);
      return;
    }
    request
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var files = (data && data.files) || [];
        renderFiles(list, files);
      })
      .catch(function (err) {
        renderError(list, "Could not load assets.json (" + err.message +
          "). Opened from file:// perhaps? Serve the site over HTTP.");
      });
  }

  function main() {
    writeMarker(); // first, so the marker exists even if anything below fails
    try {
      showStatus();
    } catch (e) {
      /* ignore */
    }
    loadFiles();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", main);
  } else {
    main();
  }
})();
