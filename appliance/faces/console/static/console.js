// The console's progressive enhancement (a plain ES module, no build step): every page works without it
// except the upload, which streams the file with XHR to show its progress and to be cancelled.

const main = document.getElementById("main");
const csrf = main ? main.dataset.csrf : "";

// Forms that ask before they act (deletions, revocations, secret rotation).
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

// The upload: the raw ZIP body, with the session's CSRF token in a header; progress and cancel.
const upload = document.getElementById("upload-form");
if (upload) {
  const file = document.getElementById("upload-file");
  const bar = document.getElementById("upload-progress");
  const row = document.getElementById("upload-progress-row");
  const percent = document.getElementById("upload-percent");
  const status = document.getElementById("upload-status");
  const start = document.getElementById("upload-start");
  const cancel = document.getElementById("upload-cancel");
  let xhr = null;
  const done = (message) => {
    status.textContent = message;
    start.disabled = false;
    cancel.hidden = true;
    xhr = null;
  };
  upload.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    xhr = new XMLHttpRequest();
    xhr.open("POST", upload.dataset.action);
    xhr.setRequestHeader("Content-Type", "application/zip");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const value = Math.round((100 * e.loaded) / e.total);
      bar.value = value;
      percent.textContent = `${value}%`;
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 202) {
        status.textContent = "Uploaded; processing…";
        window.location.assign(upload.dataset.done + encodeURIComponent(body.package_id || body.id));
      } else {
        done(`Upload refused (${xhr.status}): ${body.error || xhr.statusText}`);
      }
    });
    xhr.addEventListener("error", () => done("Upload failed: the connection was lost."));
    xhr.addEventListener("abort", () => { bar.value = 0; percent.textContent = "0%"; done("Upload cancelled."); });
    row.hidden = false;
    start.disabled = true;
    cancel.hidden = false;
    status.textContent = "Uploading…";
    xhr.send(file.files[0]);
  });
  cancel.addEventListener("click", () => { if (xhr) xhr.abort(); });
}

// A package still processing: poll its status and reload once it is settled.
const poll = document.querySelector("[data-poll]");
if (poll && ["uploaded", "processing", "queued"].includes(poll.dataset.status)) {
  const badge = document.getElementById("package-status");
  const tick = async () => {
    const answer = await fetch(poll.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (answer.ok) {
      const pkg = await answer.json();
      badge.textContent = pkg.status;
      badge.className = `badge ${pkg.status}`;
      if (!["uploaded", "processing", "queued"].includes(pkg.status)) { window.location.reload(); return; }
    }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 500);
}
