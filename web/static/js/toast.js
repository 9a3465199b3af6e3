// The short notice at the foot of the page that says what just happened.

const toast = document.getElementById("toast");
let toastTimer = null;

export function notify(text) {
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.hidden = true), 2600);
}
