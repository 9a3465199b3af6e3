// Syntax colouring for HTML source and links in plain text. Both build DOM nodes with
// textContent: the message's text is never parsed as markup in the UI's document.

const HIGHLIGHT_LIMIT = 200_000; // characters; past this the rest stays plain (speed)

const TOKEN =
  /(<!--[\s\S]*?(?:-->|$))|(<![^>]*>?)|(<\/?)([a-zA-Z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*)(\/?>)?/g;
const ATTRIBUTE = /([^\s=/>]+)(\s*=\s*)?("[^"]*"|'[^']*'|[^\s>]+)?/g;

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

function attributes(out, text) {
  let last = 0;
  for (const m of text.matchAll(ATTRIBUTE)) {
    if (m.index > last) out.append(text.slice(last, m.index));
    out.append(span("tok-attr", m[1]));
    if (m[2]) out.append(span("tok-punct", m[2]));
    if (m[3]) out.append(span("tok-value", m[3]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.append(text.slice(last));
}

/** Colour the HTML in a <code> element's text. */
export function highlightHTML(code) {
  const source = code.textContent;
  const head = source.slice(0, HIGHLIGHT_LIMIT);
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of head.matchAll(TOKEN)) {
    if (m.index > last) out.append(head.slice(last, m.index));
    if (m[1]) {
      out.append(span("tok-comment", m[1]));
    } else if (m[2]) {
      out.append(span("tok-punct", m[2]));
    } else {
      out.append(span("tok-punct", m[3]));
      out.append(span("tok-tag", m[4]));
      attributes(out, m[5]);
      if (m[6]) out.append(span("tok-punct", m[6]));
    }
    last = m.index + m[0].length;
  }
  out.append(source.slice(last));
  code.replaceChildren(out);
  code.dataset.highlighted = "true";
}

const LINK = /\bhttps?:\/\/[^\s<>"'`)\]]+[^\s<>"'`)\].,;:!?]/g;

/** Turn http(s) URLs in an element's text into links that open in a new tab. */
export function linkify(el) {
  const text = el.textContent;
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(LINK)) {
    if (m.index > last) out.append(text.slice(last, m.index));
    const a = document.createElement("a");
    a.href = m[0];
    a.textContent = m[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    out.append(a);
    last = m.index + m[0].length;
  }
  if (last === 0) return;
  out.append(text.slice(last));
  el.replaceChildren(out);
}
