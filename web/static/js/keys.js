// Keyboard shortcuts. They never fire while typing, inside a dialog, or with a modifier held.

function typing(target) {
  return Boolean(target.closest("input, textarea, select, [contenteditable='true']"));
}

/**
 * @param {Record<string, (event: KeyboardEvent) => boolean | void>} actions by name; an action
 *   returning false lets the browser handle the key as usual.
 */
export function installShortcuts(actions) {
  const bindings = {
    j: "next",
    ArrowDown: "next",
    k: "previous",
    ArrowUp: "previous",
    Enter: "open",
    o: "open",
    Escape: "close",
    Delete: "delete",
    Backspace: "delete",
    "#": "delete",
    u: "toggleRead",
    "/": "search",
    "?": "help",
    "[": "newerPage",
    "]": "olderPage",
  };
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    const target = event.target;
    if (typing(target)) {
      if (event.key === "Escape" && target.id === "search") {
        target.blur();
        actions.leaveSearch?.();
      }
      return;
    }
    // Arrow keys scroll whatever has focus in the message pane (a long text, say), and move
    // between tabs in a tab list; j and k always move between messages.
    const inPane = Boolean(target.closest("#message-pane"));
    if ((event.key === "ArrowDown" || event.key === "ArrowUp") && inPane) return;
    if (event.key === "Enter" && target.closest("a, button, [role='tab']") && !target.closest(".row")) {
      return;
    }
    let name = bindings[event.key];
    if (!name && /^[1-9]$/.test(event.key)) name = "tab";
    if (!name || !actions[name]) return;
    if (actions[name](event) === false) return;
    event.preventDefault();
  });
}
