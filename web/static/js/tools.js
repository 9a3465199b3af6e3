// What the UI can do besides reading mail, each through the JSON API: edit a message's tags,
// check its links, release it through the relay, and set the SMTP server's chaos rules.

import { call, getJSON } from "./api.js";
import { notify } from "./toast.js";

const pane = document.getElementById("message-pane");
const chaosButton = document.getElementById("chaos-button");
const STAGES = ["Connect", "Sender", "Recipient", "Authentication", "Data"];


function openID() {
  return pane.querySelector("article.message")?.dataset.id ?? null;
}

function showError(form, message) {
  const box = form.querySelector(".dialog-error");
  box.textContent = message;
  box.hidden = !message;
}

// -- tags -------------------------------------------------------------------------------

function tagChip(tag) {
  const li = document.createElement("li");
  li.className = "tag";
  li.dataset.tag = tag;
  const name = document.createElement("span");
  name.textContent = tag;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "tag-remove";
  remove.dataset.tool = "remove-tag";
  remove.setAttribute("aria-label", `Remove ${tag}`);
  remove.textContent = "×";
  li.append(name, remove);
  return li;
}

function chips() {
  return [...document.querySelectorAll("#tag-edit [data-tag]")].map((li) => li.dataset.tag);
}

function addTag() {
  const input = document.getElementById("tag-new");
  const have = chips();
  for (const tag of input.value.split(",").map((t) => t.trim())) {
    if (tag && !have.includes(tag)) {
      document.getElementById("tag-edit").append(tagChip(tag));
      have.push(tag);
    }
  }
  input.value = "";
  input.focus();
}

/** The message header's tag list, as saved. */
function showTags(tags) {
  const head = pane.querySelector(".message-head");
  let list = head.querySelector("ul.tags");
  if (!tags.length) return list?.remove();
  if (!list) {
    list = document.createElement("ul");
    list.className = "tags";
    list.setAttribute("aria-label", "Tags");
    head.querySelector(".message-subject").after(list);
  }
  list.replaceChildren(
    ...tags.map((tag) => {
      const li = document.createElement("li");
      li.className = "tag";
      li.textContent = tag;
      return li;
    }),
  );
}

async function saveTags(form) {
  addTag(); // a tag typed but not yet added counts too
  const tags = chips();
  await call("PUT", "api/v1/tags", { IDs: [openID()], Tags: tags });
  showTags(tags);
  notify(tags.length ? `Tags saved: ${tags.join(", ")}` : "Tags removed");
}

// -- link check -------------------------------------------------------------------------

async function linkCheck() {
  const id = openID();
  const dialog = document.getElementById("links-dialog");
  const summary = document.getElementById("links-summary");
  const table = dialog.querySelector(".links-table");
  const rows = document.getElementById("links-rows");
  summary.textContent = "Checking the links…";
  table.hidden = true;
  rows.replaceChildren();
  dialog.showModal();
  try {
    const result = await getJSON(`api/v1/message/${encodeURIComponent(id)}/link-check`);
    if (openID() !== id) return;
    const links = result.Links || [];
    if (!links.length) summary.textContent = "This message has no links.";
    else if (links.length === 1) summary.textContent = result.Errors ? "The link failed." : "The link works.";
    else if (result.Errors) summary.textContent = `${result.Errors} of ${links.length} links failed.`;
    else summary.textContent = `All ${links.length} links work.`;
    for (const link of links) {
      const tr = document.createElement("tr");
      const failed = !(link.StatusCode >= 200 && link.StatusCode < 400);
      tr.className = failed ? "link-failed" : "link-ok";
      const status = document.createElement("td");
      status.textContent = link.StatusCode ? `${link.StatusCode} ${link.Status}` : link.Status;
      const address = document.createElement("td");
      const code = document.createElement("code");
      code.textContent = link.URL;
      address.append(code);
      tr.append(status, address);
      rows.append(tr);
    }
    table.hidden = !links.length;
  } catch (error) {
    summary.textContent = `The link check failed: ${error.message}`;
  }
}

// -- release ----------------------------------------------------------------------------

async function release(form) {
  const to = form.querySelector("#release-to").value.split(/[\s,;]+/).filter(Boolean);
  if (!to.length) throw new Error("Name at least one recipient.");
  await call("POST", `api/v1/message/${encodeURIComponent(openID())}/release`, { To: to });
  notify(`Released to ${to.join(", ")}`);
}

// -- chaos ------------------------------------------------------------------------------

function showChaos(chaos) {
  const on =
    STAGES.some((stage) => chaos[stage]?.Probability > 0) ||
    chaos.RejectNext?.Count > 0 ||
    (chaos.Rules || []).length > 0;
  chaosButton.dataset.active = String(on);
  const label = on ? "Chaos is on: SMTP fails on purpose. Change it" : "Chaos: make SMTP fail on purpose";
  chaosButton.setAttribute("aria-label", label);
  chaosButton.title = label;
}

async function openChaos() {
  const dialog = document.getElementById("chaos-dialog");
  const form = dialog.querySelector("form");
  showError(form, "");
  try {
    const chaos = await getJSON("api/v1/chaos", { extras: 1 });
    for (const stage of STAGES) {
      form.elements[`${stage}-probability`].value = chaos[stage]?.Probability ?? 0;
      form.elements[`${stage}-code`].value = chaos[stage]?.Probability ? chaos[stage].ErrorCode : "";
    }
    form.elements["reject-count"].value = chaos.RejectNext?.Count ?? 0;
    form.elements["reject-code"].value = chaos.RejectNext?.Count ? chaos.RejectNext.ErrorCode : "";
    form.elements.rules.value = (chaos.Rules || []).map((r) => `${r.Recipient} ${r.ErrorCode}`).join("\n");
    showChaos(chaos);
  } catch (error) {
    showError(form, error.message);
  }
  dialog.showModal();
}

async function saveChaos(form, off) {
  const body = {};
  if (!off) {
    const number = (name) => Number(form.elements[name].value) || 0;
    for (const stage of STAGES) {
      const probability = number(`${stage}-probability`);
      if (probability > 0) body[stage] = { Probability: probability, ErrorCode: number(`${stage}-code`) };
    }
    const count = number("reject-count");
    if (count > 0) body.RejectNext = { Count: count, ErrorCode: number("reject-code") || 451 };
    body.Rules = form.elements.rules.value
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter(([pattern]) => pattern)
      .map(([pattern, code]) => ({ Recipient: pattern, ErrorCode: Number(code) || 550 }));
  }
  const response = await call("PUT", "api/v1/chaos?extras=1", body);
  showChaos(await response.json());
  notify(off ? "Chaos is off" : "Chaos rules saved");
}

// -- wiring -----------------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const tool = event.target.closest("[data-tool]");
  if (!tool) return;
  const name = tool.dataset.tool;
  if (name === "tags") {
    const form = document.querySelector("#tags-dialog form");
    showError(form, "");
    document.getElementById("tags-dialog").showModal();
  } else if (name === "add-tag") addTag();
  else if (name === "remove-tag") tool.closest("li").remove();
  else if (name === "link-check") linkCheck();
  else if (name === "release") {
    showError(document.querySelector("#release-dialog form"), "");
    document.getElementById("release-dialog").showModal();
  } else if (name === "chaos") openChaos();
});

document.addEventListener("keydown", (event) => {
  // Enter in the new-tag field adds the tag rather than submitting the dialog.
  if (event.key === "Enter" && event.target.id === "tag-new") {
    event.preventDefault();
    addTag();
  }
});

const ACTIONS = {
  tags: (form) => saveTags(form),
  release: (form) => release(form),
  chaos: (form, value) => saveChaos(form, value === "off"),
};

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("[data-tool-form]");
  const value = event.submitter?.value;
  if (!form || value === "cancel") return;
  event.preventDefault();
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((b) => (b.disabled = true));
  try {
    showError(form, "");
    await ACTIONS[form.dataset.toolForm](form, value);
    form.closest("dialog").close(value);
  } catch (error) {
    showError(form, error.message);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
});

getJSON("api/v1/chaos", { extras: 1 }).then(showChaos, () => {});
