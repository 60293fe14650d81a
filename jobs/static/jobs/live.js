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
                if (text) text.textContent = job.progress + "%";
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

    function tick() {
        timer = null;
        const url = liveUrl();
        const ids = activeIds();
        if (!url || !ids.length || document.hidden) return;
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
