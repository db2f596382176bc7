/* Pictures made by {% picture %}: once an <img> is drawn, take its
   placeholder (blurhash and dominant colour, painted behind it) away, so a
   picture with transparency does not show it through. A picture whose file
   cannot be loaded (lost from storage) becomes the "No photo" box a product
   without a picture shows, rather than a broken image over its placeholder.
   Pure enhancement: with no script the picture still covers its placeholder. */
(function () {
  "use strict";

  function loaded(img) {
    img.classList.add("is-loaded");
  }

  // The box {% picture %} renders for no picture (uploads/picture.html), in
  // the picture's place and shape; the words come with the <img>.
  function missing(img) {
    const picture = img.closest("picture") || img;
    const box = document.createElement("span");
    box.className = ("picture-placeholder picture-missing " + picture.className).trim();
    box.style.aspectRatio = img.getAttribute("width") + " / " + img.getAttribute("height");
    box.dataset.status = "lost";
    const words = document.createElement("span");
    words.textContent = img.dataset.noPhoto;
    box.append(words);
    picture.replaceWith(box);
  }

  // "load" and "error" do not bubble: listen while they go down (capture),
  // for every picture, also those added to the page later.
  function listen(type, handle) {
    document.addEventListener(
      type,
      function (event) {
        const img = event.target;
        if (img instanceof HTMLImageElement && img.hasAttribute("data-placeholder")) {
          handle(img);
        }
      },
      true
    );
  }
  listen("load", loaded);
  listen("error", missing);

  // Pictures that loaded, or failed, before this script ran.
  function sweep() {
    document.querySelectorAll("img[data-placeholder]").forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) {
        loaded(img);
      } else if (img.complete && img.currentSrc) {
        missing(img);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", sweep);
  } else {
    sweep();
  }
})();
