// Keeps the table of /runs/live current from the server-sent events of
// /runs/live/events. Each `run` event carries one job's state as JSON; a job that
// ended stays on screen for a few seconds with its final state, then goes.
(function () {
  "use strict";

  var ENDED_ROW_MS = 10000;
  var table = document.getElementById("live-runs");
  if (!table || !window.EventSource) {
    return;
  }
  var body = table.tBodies[0];
  var empty = document.getElementById("live-empty");

  function formatBytes(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var size = bytes;
    var unit = 0;
    while (size >= 1024 && unit + 1 < units.length) {
      size /= 1024;
      unit += 1;
    }
    return unit === 0 ? bytes + " B" : size.toFixed(1) + " " + units[unit];
  }

  function cells(run) {
    var fetched = "";
    if (run.bytes_fetched !== null) {
      fetched = formatBytes(run.bytes_fetched);
      if (run.bytes_total !== null) {
        fetched += " of " + formatBytes(run.bytes_total);
      }
    }
    return {
      instance: run.instance,
      database: run.database,
      backup_type: run.backup_type || "",
      phase: run.phase,
      percent: run.percent === null ? "" : run.percent.toFixed(1) + " %",
      fetched: fetched,
      state: run.state
    };
  }

  function newRow(run) {
    var row = document.createElement("tr");
    row.setAttribute("data-run", String(run.run_id));
    var link = document.createElement("a");
    link.href = "/runs/" + run.run_id;
    link.textContent = String(run.run_id);
    var first = document.createElement("td");
    first.appendChild(link);
    row.appendChild(first);
    ["instance", "database", "backup_type", "phase", "percent", "fetched", "state"].forEach(
      function (field) {
        var cell = document.createElement("td");
        cell.setAttribute("data-field", field);
        row.appendChild(cell);
      }
    );
    body.appendChild(row);
    return row;
  }

  function show(run) {
    var row = body.querySelector('tr[data-run="' + run.run_id + '"]') || newRow(run);
    var values = cells(run);
    Object.keys(values).forEach(function (field) {
      var cell = row.querySelector('td[data-field="' + field + '"]');
      if (cell && cell.textContent !== values[field]) {
        cell.textContent = values[field];
      }
    });
    if (run.state !== "running") {
      setTimeout(function () {
        row.remove();
        empty.hidden = body.rows.length > 0;
      }, ENDED_ROW_MS);
    }
    empty.hidden = body.rows.length > 0;
  }

  var source = new EventSource("/runs/live/events");
  source.addEventListener("run", function (message) {
    show(JSON.parse(message.data));
  });
})();
