/* A change list's cell cut short with an ellipsis (static/css/admin.css)
   shows its whole value as a tooltip: set when the pointer comes to it,
   from what it holds then, so a cell that fits since the window grew shows
   none. Pure enhancement: the row's page shows every value whole. */
(function () {
  "use strict";

  document.addEventListener("mouseover", function (event) {
    const cell = event.target.closest && event.target.closest("#result_list tbody td, #result_list tbody th");
    if (!cell || getComputedStyle(cell).textOverflow !== "ellipsis") {
      return;
    }
    if (cell.scrollWidth > cell.clientWidth) {
      cell.title = cell.textContent.trim();
    } else {
      cell.removeAttribute("title");
    }
  });
})();
