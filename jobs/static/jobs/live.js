/* Live refresh for System → Jobs: every 2 s, fetch state / progress / attempts of the jobs on
   the page that are still pending, running or retrying, and update them in place. Paused
   while the tab is hidden; stops once nothing on the page can change any more. */
(function () {
    "use strict";
    const INTERVAL = 2000;
    const ACTIVE = new Set(["pending", "running", "retrying"]);
    let timer = null;

    function liveUrl() {
        const el = document.getElementById("jobs-live");
        return el ? el.dataset.jobsLiveUrl : null;
    }

    function activeIds() {
        const ids = new Set();
        document.querySelectorAll('[data-live="state"][data-job-id]').forEach(function (el) {
            if (ACTIVE.has(el.dataset.state)) ids.add(el.dataset.jobId);
        });
        return Array.from(ids);
    }

    function setStateClass(el, state) {
        Array.from(el.classList).forEach(function (c) {
            if (c.indexOf("job-state-") === 0) el.classList.remove(c);
        });
        el.classList.add("job-state-" + state);
    }

    function formatDuration(seconds) {
        if (seconds === null || seconds === undefined) return "—";
        return seconds < 120 ? seconds.toFixed(1) + " s" : (seconds / 60).toFixed(1) + " min";
    }

    function update(job) {
        document.querySelectorAll('[data-job-id="' + job.id + '"]').forEach(function (el) {
            switch (el.dataset.live) {
            case "state":
                el.dataset.state = job.state;
                el.textContent = job.state_label;
                setStateClass(el, job.state);
                break;
            case "progress": {
                const fill = el.querySelector(".job-progress-fill");
                const track = el.querySelector(".job-progress-track");
                if (fill) {
                    fill.style.width = job.progress + "%";
                    setStateClass(fill, job.state);
                }
                if (track) track.setAttribute("aria-valuenow", job.progress);
                const text = el.querySelector(".job-progress-text");
                if (text) text.textContent = job.progress + (el.classList.contains("job-progress-inline") ? " %" : "%");
                const msg = el.querySelector(".job-progress-message");
                if (msg) msg.textContent = job.message;
                break;
            }
            case "attempts":
                el.textContent = job.attempts + "/" + job.max_attempts;
                break;
            case "error":
                el.textContent = job.last_error.slice(0, 120);
                el.title = job.last_error;
                break;
            case "duration":
                el.textContent = formatDuration(job.duration);
                break;
            case "stale":
                el.hidden = !job.stale;
                break;
            case "settled-note":
                if (job.settled) el.hidden = false;
                break;
            case "errors-count":
                if (String(job.errors) !== el.dataset.count) {
                    el.hidden = false;
                }
                break;
            }
        });
    }

    function schedule() {
        if (timer === null && !document.hidden) timer = window.setTimeout(tick, INTERVAL);
    }
    // Rows inserted by the "new jobs" bar are live too.
    document.addEventListener("jobs:rows-added", schedule);

    function tick() {
        timer = null;
        const url = liveUrl();
        const ids = activeIds();
        if (!url || !ids.length || document.hidden) return;
        if (window.localStorage.getItem("jobs.live.paused") === "1") return schedule();
        fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), {
            credentials: "same-origin",
            headers: {Accept: "application/json"},
        })
            .then(function (response) {
                if (!response.ok) throw new Error("HTTP " + response.status);
                return response.json();
            })
            .then(function (data) { data.jobs.forEach(update); })
            .catch(function () { /* network hiccup: try again next tick */ })
            .finally(schedule);
    }

    document.addEventListener("visibilitychange", function () {
        if (document.hidden) {
            if (timer !== null) window.clearTimeout(timer);
            timer = null;
        } else {
            schedule();
        }
    });
    window.addEventListener("DOMContentLoaded", schedule);
    if (document.readyState !== "loading") schedule();
})();

/* The list as a whole, every 5 s: fetch this same URL (same filters, same page) and take from
   it the queues strip and chart, and the rows of jobs that are not on the page yet. Those wait
   behind an "N new jobs" bar (a click puts them on top), so a selection is never disturbed.
   A toggle pauses all of it; relative times ("12 s ago") tick every second. */
(function () {
    "use strict";
    const LIST_INTERVAL = 5000;
    const STORE = "jobs.live.paused";
    let timer = null;
    let pending = [];

    function paused() { return window.localStorage.getItem(STORE) === "1"; }

    function rowId(tr) {
        const el = tr.querySelector('[data-live="state"][data-job-id]');
        return el ? el.dataset.jobId : null;
    }

    function shownIds() {
        const ids = new Set();
        document.querySelectorAll("#result_list tbody tr").forEach(function (tr) {
            const id = rowId(tr);
            if (id) ids.add(id);
        });
        return ids;
    }

    function relative(seconds) {
        const s = Math.max(0, Math.round(seconds));
        if (s < 120) return s + " s";
        if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
        if (s < 86400) return Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " min";
        return Math.floor(s / 86400) + " d " + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + " h";
    }

    function tickTimes() {
        const now = Date.now();
        document.querySelectorAll("time.job-rel[datetime]").forEach(function (el) {
            const at = Date.parse(el.getAttribute("datetime"));
            if (isNaN(at)) return;
            const diff = (now - at) / 1000;
            el.textContent = diff >= 0 ? relative(diff) + " ago" : (el.dataset.future || "in") + " " + relative(-diff);
        });
    }

    function showBar() {
        const bar = document.getElementById("jobs-new-bar");
        if (!bar) return;
        bar.hidden = pending.length === 0;
        const button = bar.querySelector("button");
        if (button) button.textContent = pending.length + " new job" + (pending.length === 1 ? "" : "s") + " — show";
    }

    function insertPending() {
        const body = document.querySelector("#result_list tbody");
        if (!body) return;
        const first = body.firstElementChild;
        pending.forEach(function (tr) {
            tr.classList.add("jobs-row-new");
            body.insertBefore(document.importNode(tr, true), first);
        });
        pending = [];
        showBar();
        tickTimes();
        syncSelection();
        document.dispatchEvent(new CustomEvent("jobs:rows-added"));
    }

    /* Django's actions.js counts only the rows the page was loaded with: once rows are
       inserted, keep "k of N selected" and the select-all box right ourselves. */
    function rowBoxes() {
        return Array.from(document.querySelectorAll("#result_list tbody input.action-select"));
    }

    function syncSelection() {
        const counter = document.querySelector("span.action-counter");
        if (!counter) return;
        const boxes = rowBoxes();
        const sel = boxes.filter(function (b) { return b.checked; }).length;
        counter.dataset.actionsIcnt = String(boxes.length);
        counter.textContent = (typeof interpolate === "function" && typeof ngettext === "function")
            ? interpolate(ngettext("%(sel)s of %(cnt)s selected", "%(sel)s of %(cnt)s selected", sel),
                {sel: sel, cnt: boxes.length}, true)
            : sel + " of " + boxes.length + " selected";
        const all = document.getElementById("action-toggle");
        if (all) all.checked = boxes.length > 0 && sel === boxes.length;
        if (sel !== boxes.length) {
            // Not every row: no "select all N matching" question (actions.js's clearAcross).
            document.querySelectorAll("div.actions span.question, div.actions span.clear, div.actions span.all")
                .forEach(function (el) { el.classList.add("hidden"); });
            counter.classList.remove("hidden");
            document.querySelectorAll("div.actions input.select-across").forEach(function (el) { el.value = 0; });
        }
    }

    // Listeners on the document run after actions.js's own (on the tbody and the toggle).
    document.addEventListener("change", function (event) {
        if (event.target.classList && event.target.classList.contains("action-select")) syncSelection();
    });
    document.addEventListener("click", function (event) {
        if (!event.target || event.target.id !== "action-toggle") return;
        const checked = event.target.checked;
        rowBoxes().forEach(function (b) {
            b.checked = checked;
            const tr = b.closest("tr");
            if (tr) tr.classList.toggle("selected", checked);
        });
        syncSelection();
        if (checked) {
            // Every row is selected: offer "select all N", as actions.js does.
            document.querySelectorAll("div.actions span.question").forEach(function (el) { el.classList.remove("hidden"); });
        }
    });

    function refresh() {
        timer = null;
        if (paused() || document.hidden) return;
        fetch(window.location.href, {credentials: "same-origin", headers: {Accept: "text/html"}})
            .then(function (r) {
                if (!r.ok) throw new Error("HTTP " + r.status);
                return r.text();
            })
            .then(function (html) {
                const doc = new DOMParser().parseFromString(html, "text/html");
                const fresh = doc.getElementById("jobs-overview");
                const here = document.getElementById("jobs-overview");
                if (fresh && here) {
                    here.innerHTML = fresh.innerHTML;
                    restorePanel();
                }
                const shown = shownIds();
                const waiting = new Set(pending.map(rowId));
                doc.querySelectorAll("#result_list tbody tr").forEach(function (tr) {
                    const id = rowId(tr);
                    if (id && !shown.has(id) && !waiting.has(id)) pending.push(tr);
                });
                showBar();
                tickTimes();
            })
            .catch(function () { /* try again next time */ })
            .finally(schedule);
    }

    function schedule() {
        if (timer === null && !paused() && !document.hidden) timer = window.setTimeout(refresh, LIST_INTERVAL);
    }

    /* The queues panel stays open or shut as the operator left it (shut by default). */
    const PANEL = "jobs.overview.open";
    function restorePanel() {
        const panel = document.getElementById("jobs-overview-panel");
        if (panel) panel.open = window.localStorage.getItem(PANEL) === "1";
    }
    document.addEventListener("toggle", function (event) {
        if (event.target && event.target.id === "jobs-overview-panel") {
            window.localStorage.setItem(PANEL, event.target.open ? "1" : "0");
        }
    }, true);  // toggle does not bubble

    function setup() {
        restorePanel();
        tickTimes();
        window.setInterval(tickTimes, 1000);
        if (!document.getElementById("jobs-overview")) return;  // not the list
        const bar = document.getElementById("jobs-new-bar");
        if (bar) bar.querySelector("button").addEventListener("click", insertPending);
        const toggle = document.getElementById("jobs-live-toggle");
        if (toggle) {
            toggle.checked = !paused();
            toggle.addEventListener("change", function () {
                window.localStorage.setItem(STORE, toggle.checked ? "0" : "1");
                if (toggle.checked) schedule();
                else if (timer !== null) { window.clearTimeout(timer); timer = null; }
                document.dispatchEvent(new CustomEvent("jobs:live-toggled"));
            });
        }
        document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(); });
        schedule();
    }

    if (document.readyState === "loading") window.addEventListener("DOMContentLoaded", setup);
    else setup();
})();
