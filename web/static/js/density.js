// Row density: comfortable (three lines a message) or compact (one), remembered per browser.
// theme.js applies the saved choice before the first paint.

const button = document.getElementById("density-toggle");
const root = document.documentElement;

function show() {
  button.setAttribute("aria-pressed", String(root.dataset.density === "compact"));
}

button.addEventListener("click", () => {
  const compact = root.dataset.density !== "compact";
  if (compact) root.dataset.density = "compact";
  else delete root.dataset.density;
  try {
    if (compact) localStorage.setItem("mailsink-density", "compact");
    else localStorage.removeItem("mailsink-density");
  } catch {
    /* storage disabled: the choice lasts for this page */
  }
  show();
  document.querySelector(".row.is-cursor")?.scrollIntoView({ block: "nearest" });
});
show();
