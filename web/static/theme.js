// Runs before the first paint (a classic script in <head>), so a chosen theme (or row
// density) never flashes.
(function () {
  try {
    var chosen = localStorage.getItem("mailsink-theme");
    if (chosen === "light" || chosen === "dark") {
      document.documentElement.dataset.theme = chosen;
    }
    if (localStorage.getItem("mailsink-density") === "compact") {
      document.documentElement.dataset.density = "compact";
    }
  } catch (e) {
    /* storage disabled: follow the system */
  }
})();
