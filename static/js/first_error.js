// After a form comes back with errors, move the keyboard focus to the first field in error, so a screen
// reader reads that field and its error (aria-describedby) instead of starting again at the page's top.
(function () {
  "use strict";
  var field = document.querySelector("main [aria-invalid=true]");
  if (field && typeof field.focus === "function") { field.focus(); }
})();
