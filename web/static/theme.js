// Runs before the first paint (a classic script in <head>), so a chosen theme never flashes.
(function () {
  try {
    var chosen = localStorage.getItem("mailsink-theme");
    if (chosen === "light" || chosen === "dark") {
      document.documentElement.dataset.theme = chosen;
    }
  } catch (e) {
    /* storage disabled: follow the system */
  }
})();
