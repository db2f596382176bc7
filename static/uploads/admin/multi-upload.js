/* The admin's multiple upload: instead of one long form post, each file is
   uploaded on its own through the API (the session and the CSRF token of the
   form), with its progress, then its processing is followed until it is
   ready (a thumbnail) or failed (the reason), without a reload. Files go one
   after another; the images still processing are asked about in turn, less
   often as time passes. With no script, the form posts as it always did. */
(function () {
  "use strict";

  const POLL_FIRST_MS = 700;
  const POLL_MAX_MS = 4000;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function kilobytes(bytes) {
    return bytes < 1024 * 1024 ? Math.ceil(bytes / 1024) + " KB" : (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function reason(body, status) {
    if (body && typeof body === "object") {
      for (const key of ["file", "preset", "title", "alt", "detail"]) {
        const value = body[key];
        if (value) {
          return Array.isArray(value) ? value.join(" ") : String(value);
        }
      }
    }
    return "The portal answered HTTP " + status + ".";
  }

  class Row {
    constructor(file, list, changeUrl) {
      this.file = file;
      this.changeUrl = changeUrl;
      this.node = element("li", "upload-file");
      this.thumb = element("img", "upload-file-thumb");
      this.thumb.alt = "";
      this.thumb.width = 48;
      this.thumb.height = 48;
      this.name = element("span", "upload-file-name", file.name);
      const middle = element("span", "upload-file-progress");
      this.bar = element("progress");
      this.bar.max = 100;
      this.bar.value = 0;
      this.bar.setAttribute("aria-label", "Upload of " + file.name);
      this.status = element("span", "upload-file-status");
      middle.append(this.bar, this.status);
      this.detail = element("span", "upload-file-detail", kilobytes(file.size));
      this.node.append(this.thumb, this.name, middle, this.detail);
      list.append(this.node);
      this.set("queued", "Waiting");
    }

    set(state, status, detail) {
      this.state = state;
      this.node.dataset.state = state;
      this.status.textContent = status;
      if (detail !== undefined) {
        this.detail.textContent = detail;
      }
    }

    progress(percent) {
      this.bar.value = percent;
      this.set("uploading", "Uploading " + percent + "%");
    }

    uploaded(image) {
      this.id = image.id;
      this.bar.value = 100;
      // No page to link to for staff who may upload images but not see them.
      if (this.changeUrl) {
        const link = element("a", "upload-file-name", this.file.name);
        link.href = this.changeUrl.replace("/0/", "/" + image.id + "/");
        this.name.replaceWith(link);
        this.name = link;
      }
      this.show(image);
    }

    show(image) {
      if (image.status === "ready") {
        this.bar.hidden = true;
        this.set("ready", "Ready", image.width + "×" + image.height);
        const thumb = (image.renditions || []).find(function (r) {
          return r.name === "thumb" && r.format !== "avif";
        });
        const src = thumb ? thumb.url : image.src;
        if (src) {
          this.thumb.src = src;
        }
      } else if (image.status === "failed") {
        this.bar.hidden = true;
        this.set("failed", "Failed", image.error || "Processing failed.");
      } else {
        this.set(image.status, image.status === "processing" ? "Processing" : "Waiting to be processed");
      }
    }

    settled() {
      return ["ready", "failed", "refused"].includes(this.state);
    }
  }

  function send(form, row, fields) {
    return new Promise(function (resolve) {
      const data = new FormData();
      data.append("file", row.file, row.file.name);
      for (const [key, value] of Object.entries(fields)) {
        data.append(key, value);
      }
      const request = new XMLHttpRequest();
      request.open("POST", form.dataset.api);
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          row.progress(Math.min(99, Math.floor((event.loaded / event.total) * 100)));
        }
      });
      request.addEventListener("load", function () {
        let body = null;
        try {
          body = JSON.parse(request.responseText);
        } catch (ignored) {
          body = null;
        }
        if (request.status === 201 && body) {
          row.uploaded(body);
        } else {
          row.bar.hidden = true;
          row.set("refused", "Refused", reason(body, request.status));
        }
        resolve();
      });
      request.addEventListener("error", function () {
        row.bar.hidden = true;
        row.set("refused", "Not sent", "The connection failed; nothing was stored.");
        resolve();
      });
      row.progress(0);
      request.send(data);
    });
  }

  // Asks about the images still processing, in turn, until every file has
  // been sent and every image has settled.
  async function poll(form, rows, sending) {
    let wait = POLL_FIRST_MS;
    for (;;) {
      const waiting = rows.filter(function (row) {
        return row.id !== undefined && !row.settled();
      });
      if (!waiting.length && !sending()) {
        return;
      }
      await new Promise(function (done) {
        setTimeout(done, wait);
      });
      for (const row of waiting) {
        try {
          const response = await fetch(form.dataset.api + row.id + "/", {
            credentials: "same-origin",
            headers: { Accept: "application/json" },
          });
          if (response.status === 404) {
            row.bar.hidden = true;
            row.set("failed", "Deleted", "The image was deleted meanwhile.");
          } else if (response.ok) {
            row.show(await response.json());
          }
        } catch (ignored) {
          // Asked again next round.
        }
      }
      wait = waiting.length ? Math.min(POLL_MAX_MS, Math.round(wait * 1.5)) : POLL_FIRST_MS;
    }
  }

  function summary(section, rows) {
    const count = function (state) {
      return rows.filter(function (row) {
        return row.state === state;
      }).length;
    };
    const parts = [count("ready") + " ready"];
    if (count("failed")) {
      parts.push(count("failed") + " failed");
    }
    if (count("refused")) {
      parts.push(count("refused") + " refused");
    }
    const pending = rows.length - count("ready") - count("failed") - count("refused");
    if (pending) {
      parts.push(pending + " to go");
    }
    section.querySelector(".upload-progress-summary").textContent = parts.join(", ") + ".";
  }

  function setup(form) {
    const section = document.getElementById("upload-progress");
    const input = form.querySelector("input[type=file][name=files]");
    const submit = form.querySelector("[type=submit]");
    if (!section || !input || !window.FormData || !window.fetch) {
      return;
    }
    form.addEventListener("submit", async function (event) {
      if (!input.files.length) {
        return; // the form's own "required" answer
      }
      event.preventDefault();
      const fields = {
        preset: form.elements.preset.value,
        title: form.elements.title.value,
        alt: form.elements.alt.value,
      };
      const list = section.querySelector(".upload-progress-list");
      const rows = Array.from(input.files).map(function (file) {
        return new Row(file, list, form.dataset.changeUrl);
      });
      section.hidden = false;
      submit.disabled = true;
      input.value = "";
      const ticker = setInterval(function () {
        summary(section, rows);
      }, 300);
      let sending = true;
      const polling = poll(form, rows, function () {
        return sending;
      });
      for (const row of rows) {
        await send(form, row, fields);
        summary(section, rows);
      }
      sending = false;
      await polling;
      clearInterval(ticker);
      summary(section, rows);
      submit.disabled = false;
      if (form.dataset.changelistUrl) {
        const more = element("a", "upload-progress-done", "See every image");
        more.href = form.dataset.changelistUrl;
        section.querySelector(".upload-progress-summary").append(" ", more);
      }
    });
  }

  function start() {
    const form = document.getElementById("image-upload-form");
    if (form) {
      setup(form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
