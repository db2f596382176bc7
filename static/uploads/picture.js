/* Pictures made by {% picture %}: once an <img> is drawn, take its
   placeholder (blurhash and dominant colour, painted behind it) away, so a
   picture with transparency does not show it through. Pure enhancement: with
   no script the picture still covers its placeholder. */
(function () {
  "use strict";

  function loaded(img) {
    img.classList.add("is-loaded");
  }

  // "load" does not bubble: listen while it goes down (capture), for every
  // picture, also those added to the page later.
  document.addEventListener(
    "load",
    function (event) {
      const img = event.target;
      if (img instanceof HTMLImageElement && img.hasAttribute("data-placeholder")) {
        loaded(img);
      }
    },
    true
  );

  function sweep() {
    document.querySelectorAll("img[data-placeholder]").forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) {
        loaded(img);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", sweep);
  } else {
    sweep();
  }
})();
