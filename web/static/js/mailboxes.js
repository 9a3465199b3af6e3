// The mailbox switcher: every mailbox the user may read, with its unread count, kept live
// by the server's mailbox stream; choosing one opens its inbox at /m/NAME/.

const select = document.getElementById("mailbox-switcher");

if (select) {
  const root = new URL(select.dataset.root, document.baseURI);
  const current = select.dataset.current;
  const inboxOf = (name) => new URL(name === "default" ? "./" : `m/${encodeURIComponent(name)}/`, root);
  const label = (box) => (box.Unread ? `${box.Name} (${box.Unread})` : box.Name);

  select.addEventListener("change", () => window.location.assign(inboxOf(select.value)));

  const show = (boxes) => {
    if (!boxes.some((box) => box.Name === current)) {
      boxes.push({ Name: current, Unread: 0 });
      boxes.sort((a, b) => (a.Name < b.Name ? -1 : 1));
    }
    const same = boxes.length === select.options.length
      && boxes.every((box, i) => select.options[i].value === box.Name);
    if (!same) {
      // Mailboxes came or went: the options are made again.
      select.replaceChildren(...boxes.map((box) => new Option("", box.Name, false, box.Name === current)));
    }
    // Only the labels change otherwise, so an open list stays open.
    boxes.forEach((box, i) => {
      const option = select.options[i];
      option.textContent = label(box);
      option.dataset.unread = String(box.Unread);
    });
  };

  const stream = new EventSource(new URL("api/mailboxes/events", root));
  stream.addEventListener("mailboxes", (event) => show(JSON.parse(event.data).Mailboxes));
}
