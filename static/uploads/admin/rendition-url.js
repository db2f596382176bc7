/* The rendition URL generator of an image's admin page: pick an operation,
   a size and a format, get the signed URL from the API
   (GET /api/v1/images/{id}/url/), with the size it will have. Nothing is made
   until the URL is first requested. */
(function () {
  "use strict";

  function message(body, status) {
    if (body && typeof body === "object") {
      for (const key of ["spec", "format", "detail"]) {
        const value = body[key];
        if (value) {
          return Array.isArray(value) ? value.join(" ") : String(value);
        }
      }
    }
    return "The portal answered HTTP " + status + ".";
  }

  function setup(box) {
    const op = box.querySelector(".rendition-url-op");
    const width = box.querySelector(".rendition-url-width");
    const height = box.querySelector(".rendition-url-height");
    const by = box.querySelector(".rendition-url-by");
    const format = box.querySelector(".rendition-url-format");
    const button = box.querySelector(".rendition-url-get");
    const result = box.querySelector(".rendition-url-result");
    const value = box.querySelector(".rendition-url-value");
    const open = box.querySelector(".rendition-url-open");
    const size = box.querySelector(".rendition-url-size");
    const error = box.querySelector(".rendition-url-error");

    function shape() {
      const single = op.value === "width";
      height.hidden = single;
      by.hidden = single;
    }

    function spec() {
      const w = String(parseInt(width.value, 10));
      return op.value === "width" ? "width-" + w : op.value + "-" + w + "x" + String(parseInt(height.value, 10));
    }

    async function generate() {
      error.hidden = true;
      button.disabled = true;
      const query = new URLSearchParams({ spec: spec(), format: format.value });
      try {
        const response = await fetch(box.dataset.api + "?" + query.toString(), {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        const body = await response.json().catch(function () {
          return null;
        });
        if (!response.ok) {
          throw new Error(message(body, response.status));
        }
        value.value = body.url;
        open.href = body.url;
        size.textContent = body.width + "×" + body.height + " px, " + body.format +
          (body.made ? " (made already)" : " (made on its first request)");
        result.hidden = false;
        value.select();
      } catch (failure) {
        result.hidden = true;
        error.textContent = failure.message;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    }

    op.addEventListener("change", shape);
    button.addEventListener("click", generate);
    // Enter in a field would submit the image's form: get the URL instead.
    [width, height].forEach(function (field) {
      field.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          generate();
        }
      });
    });
    shape();
  }

  function start() {
    document.querySelectorAll("[data-rendition-url]").forEach(setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
