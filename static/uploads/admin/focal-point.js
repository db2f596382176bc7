/* The focal point editor of an image's admin page. A click on the picture
   fills the focal point fields; the marker and the square crop preview follow
   the fields, or show the automatic estimate while they are empty. */
(function () {
  "use strict";

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  // Focal points are kept in the frame of the displayed image; the rendition
  // shown may be turned by its preset (clockwise, in degrees).
  function turn(x, y, degrees) {
    for (let i = 0; i < ((degrees / 90) % 4 + 4) % 4; i++) {
      const turned = 1 - y;
      y = x;
      x = turned;
    }
    return [x, y];
  }

  function number(field) {
    return field ? parseFloat(field.value) : NaN;
  }

  function setup(editor) {
    const form = editor.closest("form");
    const fieldX = form && form.querySelector("#id_focal_x");
    const fieldY = form && form.querySelector("#id_focal_y");
    const fieldRadius = form && form.querySelector("#id_focal_radius");
    const image = editor.querySelector(".focal-editor-image");
    const marker = editor.querySelector(".focal-editor-marker");
    const frame = editor.querySelector(".focal-editor-window");
    const crop = editor.querySelector(".focal-editor-crop");
    const state = editor.querySelector(".focal-editor-state");
    const clear = editor.querySelector(".focal-editor-clear");
    const rotate = parseInt(editor.dataset.rotate || "0", 10) || 0;
    const autoX = parseFloat(editor.dataset.autoX);
    const autoY = parseFloat(editor.dataset.autoY);
    const editable = Boolean(fieldX && fieldY);

    function current() {
      const x = number(fieldX);
      const y = number(fieldY);
      if (Number.isFinite(x) && Number.isFinite(y)) {
        return { x: x, y: y, radius: number(fieldRadius), manual: true };
      }
      if (Number.isFinite(autoX) && Number.isFinite(autoY)) {
        return { x: autoX, y: autoY, radius: NaN, manual: false };
      }
      return null;
    }

    function draw() {
      const point = current() || { x: 0.5, y: 0.5, radius: NaN, manual: false, none: true };
      const shown = turn(point.x, point.y, rotate);
      const width = image.clientWidth;
      const height = image.clientHeight;
      const side = Number.isFinite(point.radius) ? 2 * point.radius * Math.min(width, height) : 14;
      marker.hidden = Boolean(point.none);
      marker.classList.toggle("focal-editor-marker-auto", !point.manual);
      marker.style.width = side + "px";
      marker.style.height = side + "px";
      marker.style.left = shown[0] * width - side / 2 + "px";
      marker.style.top = shown[1] * height - side / 2 + "px";
      if (point.none) {
        state.textContent = "No focal point yet: crops are centred.";
      } else {
        state.textContent = point.manual ? "Set by staff." : "Estimated automatically.";
      }
      if (clear) {
        clear.hidden = !editable || !point.manual;
      }
      // The square crop as processing cuts it: the largest square, centred
      // on the point as far as the picture's edges allow.
      const naturalWidth = image.naturalWidth || width;
      const naturalHeight = image.naturalHeight || height;
      const box = Math.min(naturalWidth, naturalHeight);
      const left = clamp(shown[0] * naturalWidth - box / 2, 0, naturalWidth - box);
      const top = clamp(shown[1] * naturalHeight - box / 2, 0, naturalHeight - box);
      const scale = frame.clientWidth / box;
      crop.style.width = naturalWidth * scale + "px";
      crop.style.height = naturalHeight * scale + "px";
      crop.style.left = -left * scale + "px";
      crop.style.top = -top * scale + "px";
    }

    if (editable) {
      image.addEventListener("click", function (event) {
        const rect = image.getBoundingClientRect();
        const u = clamp((event.clientX - rect.left) / rect.width, 0, 1);
        const v = clamp((event.clientY - rect.top) / rect.height, 0, 1);
        const point = turn(u, v, 360 - rotate);
        fieldX.value = point[0].toFixed(4);
        fieldY.value = point[1].toFixed(4);
        draw();
      });
      [fieldX, fieldY, fieldRadius].forEach(function (field) {
        if (field) {
          field.addEventListener("input", draw);
        }
      });
      if (clear) {
        clear.addEventListener("click", function () {
          fieldX.value = "";
          fieldY.value = "";
          if (fieldRadius) {
            fieldRadius.value = "";
          }
          draw();
        });
      }
    } else {
      editor.classList.add("focal-editor-readonly");
    }
    if (image.complete) {
      draw();
    } else {
      image.addEventListener("load", draw);
    }
    window.addEventListener("resize", draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-focal-editor]").forEach(setup);
  });
})();
