// Drives the npm package mailpit-api, unchanged, against the server at MAILSINK_URL through
// Mailpit's API v1: 2.1.0 for the REST calls, 1.9.1 (the last release with live events built
// in) for the WebSocket at /api/events. Expectations are what Mailpit itself answers.
// MAILSINK_URL may be a mailbox's base URL (/m/NAME); OTHER_MAILBOX_URL is then another
// mailbox's, which gets the same mail first: the checks fail if this client sees any of it,
// and those that change or delete messages try it on the other mailbox's too.
import { MailpitClient } from "mailpit-api";
import { MailpitClient as MailpitEventsClient } from "mailpit-api-1";
import { assert, baseURL, check, keys, otherMailboxURL, run, within } from "./checks.mjs";

const url = baseURL();
const mailpit = new MailpitClient(url);
const otherURL = otherMailboxURL();
const other = otherURL && new MailpitClient(otherURL);

// An 8x8 PNG, inline (with a Content-ID) so that Mailpit lists it under Inline.
const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbElEQVR4nBXNQRUAUQhCUZOYhCQmeUlIQhISzR+XXA7ODDtouIHBQ4YOM8suWm5h8ZKl+0CskDiBsIioHhx76LiDw0eO3oN/4FVf+J8h0PduzBqZ8x/bxNQPwgaFy192SGgelC0q13/CJaXlA+odUoHdRJQGAAAAAElFTkSuQmCC",
  "base64",
);
const html = `<p>Hello <b>reader</b></p>\n<p><a href="${url}/api/v1/info">info</a> <img src="cid:dot"></p>`;
const request = {
  From: { Email: "app@example.test", Name: "App" },
  To: [{ Email: "user@example.test", Name: "User" }],
  Cc: [{ Email: "cc@example.test", Name: "Carbon" }],
  Bcc: ["audit@example.test"],
  ReplyTo: [{ Email: "reply@example.test", Name: "Reply" }],
  Subject: "Welcome aboard",
  Text: "Hello reader\nsecond line",
  HTML: html,
  Tags: ["signup"],
  Headers: { "X-Request-Id": "42" },
  Attachments: [
    { Filename: "notes.txt", Content: Buffer.from("attached notes").toString("base64") },
    { Filename: "dot.png", Content: png.toString("base64"), ContentID: "dot", ContentType: "image/png" },
  ],
};

// Mailpit's field sets (internal/storage/structs.go): a list item, and a whole message.
const SUMMARY = ["Attachments", "Bcc", "Cc", "Created", "From", "ID", "MessageID", "Read", "ReplyTo", "Size", "Snippet", "Subject", "Tags", "To", "Username"];
const MESSAGE = ["Attachments", "Bcc", "Cc", "Date", "From", "HTML", "ID", "Inline", "ListUnsubscribe", "MessageID", "ReplyTo", "ReturnPath", "Size", "Subject", "Tags", "Text", "To", "Username"];
const address = (a) => a && `${a.Name} <${a.Address}>`;

let id;

// The other mailbox's mail: this message under the same subject with more tags (so that a
// tag list, rename or delete that crossed over shows), and the one the "delete" check
// deletes by subject here.
let others = [];
if (other) {
  await other.sendMessage({ ...request, Tags: ["alpha", "beta", "signup"] });
  await other.sendMessage({ ...request, Subject: "Second", Tags: [] });
  others = (await other.listMessages()).messages;
}
const otherIDs = others.map((m) => m.ID);

/** On a mailbox, fails unless the other mailbox's messages are all there, as they were. */
async function otherMailboxUntouched() {
  if (!other) return;
  assert.equal(others.length, 2, "the other mailbox got its two messages");
  assert.deepEqual((await other.listMessages()).messages, others);
}

check("send", async () => {
  const answer = await mailpit.sendMessage(request);
  assert.deepEqual(keys(answer), ["ID"]);
  id = answer.ID;
});

check("info", async () => {
  const info = await mailpit.getInfo();
  assert.equal(info.Messages, 1);
  assert.equal(info.Unread, 1);
  assert.equal(typeof info.Version, "string");
});

check("list", async () => {
  const list = await mailpit.listMessages();
  assert.equal(list.total, 1);
  assert.equal(list.messages_count, 1);
  assert.equal(list.start, 0);
  const [item] = list.messages;
  assert.equal(item.ID, id);
  assert.equal(item.Subject, "Welcome aboard");
  assert.equal(address(item.From), "App <app@example.test>");
  assert.deepEqual(item.To.map(address), ["User <user@example.test>"]);
  assert.deepEqual(item.Tags, ["signup"]);
  assert.equal(item.Attachments, 1);
  assert.match(item.Snippet, /Hello reader/);
});

check("list has Mailpit's fields only", async () => {
  const [item] = (await mailpit.listMessages(0, 10)).messages;
  assert.deepEqual(keys(item), SUMMARY);
});

check("read", async () => {
  const message = await mailpit.getMessageSummary(id);
  assert.equal(message.Subject, "Welcome aboard");
  assert.deepEqual(message.Cc.map(address), ["Carbon <cc@example.test>"]);
  assert.deepEqual(message.ReplyTo.map(address), ["Reply <reply@example.test>"]);
  assert.equal(message.Text.trim().replace(/\r\n/g, "\n"), "Hello reader\nsecond line");
  assert.deepEqual(message.Tags, ["signup"]);
  assert.deepEqual(
    message.Attachments.map((a) => [a.FileName, a.ContentType]),
    [["notes.txt", "text/plain"]],
  );
  assert.deepEqual(
    message.Inline.map((a) => [a.FileName, a.ContentType, a.ContentID]),
    [["dot.png", "image/png", "dot"]],
  );
  assert.equal((await mailpit.getMessageSummary()).ID, id, "latest is the newest message");
});

check("read has Mailpit's fields only", async () => {
  assert.deepEqual(keys(await mailpit.getMessageSummary(id)), MESSAGE);
});

check("read lists Bcc recipients as Mailpit stores them", async () => {
  const message = await mailpit.getMessageSummary(id);
  assert.deepEqual(message.Bcc.map((a) => a.Address), ["audit@example.test"]);
  assert.equal(message.ReturnPath, "app@example.test");
});

check("send keeps the line breaks it was given", async () => {
  // Mailpit builds the message with enmime, which writes ASCII text as 7bit, as given; the
  // rendered page points cid: references at the parts, so compare up to the image.
  const rendered = await mailpit.renderMessageHTML(id);
  assert.ok(rendered.startsWith(html.split("<img")[0]), rendered);
  assert.match(rendered, new RegExp(`<img src="[./]*api/v1/message/${id}/part/[0-9.]+">`));
  assert.equal((await mailpit.getMessageSummary(id)).HTML, html);
});

check("headers", async () => {
  const headers = await mailpit.getMessageHeaders(id);
  assert.deepEqual(headers.Subject, ["Welcome aboard"]);
  assert.deepEqual(headers["X-Request-Id"], ["42"]);
  assert.deepEqual(headers.From, ["App <app@example.test>"]);
});

check("headers as Mailpit stores the message", async () => {
  const headers = await mailpit.getMessageHeaders(id);
  assert.deepEqual(headers.Bcc, ["audit@example.test"]);
  assert.deepEqual(headers["Return-Path"], ["<app@example.test>"]);
  // Mailpit's SMTP session writes a Received header; its send API saves without one.
  assert.equal(headers.Received, undefined);
});

check("attachments", async () => {
  const message = await mailpit.getMessageSummary(id);
  const notes = await mailpit.getMessageAttachment(id, message.Attachments[0].PartID);
  assert.equal(await notes.text(), "attached notes");
  const inline = await mailpit.getMessageAttachment(id, message.Inline[0].PartID);
  assert.equal(inline.type, "image/png");
  assert.deepEqual(Buffer.from(await inline.arrayBuffer()), png);
  const thumbnail = await mailpit.getAttachmentThumbnail(id, message.Inline[0].PartID);
  assert.equal(thumbnail.type, "image/jpeg");
  assert.ok(thumbnail.size > 0);
});

check("source and rendering", async () => {
  const source = await mailpit.getMessageSource(id);
  assert.match(source, /^Subject: Welcome aboard\r?$/m);
  assert.match(await mailpit.renderMessageText(id), /Hello reader/);
  assert.match(await mailpit.renderMessageHTML(id), /Hello <b>reader<\/b>/);
});

check("link check", async () => {
  const result = await mailpit.linkCheck(id);
  assert.equal(result.Errors, 0);
  assert.deepEqual(
    result.Links.map((l) => [l.URL, l.StatusCode]),
    [[`${url}/api/v1/info`, 200]],
  );
});

check("html check", async () => {
  const result = await mailpit.htmlCheck(id);
  assert.deepEqual(keys(result), ["Platforms", "Total", "Warnings"]);
  assert.ok(result.Total.Nodes > 0 && result.Total.Tests > 0);
  assert.ok(result.Platforms.android.includes("Gmail"));
  for (const warning of result.Warnings) {
    assert.deepEqual(keys(warning), ["Category", "Description", "Keywords", "NotesByNumber", "Results", "Score", "Slug", "Tags", "Title", "URL"]);
  }
});

check("spam check says SpamAssassin is off", async () => {
  await assert.rejects(mailpit.spamAssassinCheck(id), /no SpamAssassin service defined/);
});

check("search", async () => {
  const found = await mailpit.searchMessages({ query: 'subject:"Welcome aboard"' });
  assert.equal(found.messages_count, 1);
  assert.equal(found.messages[0].ID, id);
  assert.equal((await mailpit.searchMessages({ query: "to:nobody@example.test" })).messages_count, 0);
  assert.equal((await mailpit.waitForMessage({ query: "from:app@example.test" })).ID, id);
  assert.equal((await mailpit.waitForMessages({ query: "tag:signup", count: 1, exact: true })).total, 1);
});

check("read status", async () => {
  assert.equal(await mailpit.setReadStatus({ IDs: [id], Read: true }), "ok");
  assert.equal((await mailpit.listMessages()).messages[0].Read, true);
  assert.equal(await mailpit.setReadStatus({ IDs: [id], Read: false }), "ok");
  assert.equal((await mailpit.getInfo()).Unread, 1);
  if (other) await mailpit.setReadStatus({ IDs: otherIDs, Read: true });
  await otherMailboxUntouched();
});

check("tags", async () => {
  assert.equal(await mailpit.setTags({ IDs: [id], Tags: ["alpha", "beta"] }), "ok");
  assert.deepEqual((await mailpit.getTags()).sort(), ["alpha", "beta"]);
  assert.equal(await mailpit.renameTag("alpha", "gamma"), "ok");
  assert.deepEqual((await mailpit.getMessageSummary(id)).Tags.sort(), ["beta", "gamma"]);
  assert.equal(await mailpit.deleteTag("beta"), "ok");
  assert.deepEqual(await mailpit.getTags(), ["gamma"]);
  assert.equal((await mailpit.searchMessages({ query: "tag:gamma" })).messages_count, 1);
  if (other) await mailpit.setTags({ IDs: otherIDs, Tags: ["taken"] });
  await otherMailboxUntouched();
});

const triggers = {
  Authentication: { ErrorCode: 535, Probability: 0 },
  Recipient: { ErrorCode: 452, Probability: 0 },
  Sender: { ErrorCode: 451, Probability: 0 },
};

check("chaos", async () => {
  const set = await mailpit.setChaosTriggers(triggers);
  const got = await mailpit.getChaosTriggers();
  for (const answer of [set, got]) {
    assert.deepEqual(answer.Recipient, triggers.Recipient);
    assert.deepEqual(answer.Sender, triggers.Sender);
  }
});

check("chaos answers Mailpit's fields only", async () => {
  assert.deepEqual(await mailpit.setChaosTriggers(triggers), triggers);
  assert.deepEqual(await mailpit.getChaosTriggers(), triggers);
});

check("web UI configuration says chaos is on", async () => {
  const config = await mailpit.getConfiguration();
  assert.equal(config.ChaosEnabled, true);
  assert.equal(typeof config.MessageRelay.RecipientAllowlist, "string");
});

check("release", async () => {
  const config = await mailpit.getConfiguration();
  assert.equal(config.MessageRelay.Enabled, true);
  assert.equal(await mailpit.releaseMessage(id, { To: ["relayed@example.test"] }), "ok");
});

check("errors", async () => {
  await assert.rejects(mailpit.getMessageSummary("no-such-message"), /404/);
  await assert.rejects(mailpit.getMessageHeaders("no-such-message"), /404/);
  for (const otherID of otherIDs) {
    await assert.rejects(mailpit.getMessageSummary(otherID), /404/);
    await assert.rejects(mailpit.getMessageHeaders(otherID), /404/);
    await assert.rejects(mailpit.getMessageSource(otherID), /404/);
    await assert.rejects(mailpit.releaseMessage(otherID, { To: ["leaked@example.test"] }), /404/);
  }
  await otherMailboxUntouched();
});

check("delete", async () => {
  const second = (await mailpit.sendMessage({ ...request, Subject: "Second", Tags: [] })).ID;
  assert.equal(await mailpit.deleteMessagesBySearch({ query: "subject:Second" }), "ok");
  assert.deepEqual((await mailpit.listMessages()).messages.map((m) => m.ID), [id]);
  assert.equal(await mailpit.deleteMessages({ IDs: [id] }), "ok");
  await mailpit.sendMessage(request);
  assert.equal(await mailpit.deleteMessages(), "ok");
  assert.equal((await mailpit.waitForMessages({ count: 0 })).total, 0);
  assert.notEqual(second, id);
  if (other) assert.equal(await mailpit.deleteMessages({ IDs: otherIDs }), "ok");
  await otherMailboxUntouched();
});

check("live events", async () => {
  const events = new MailpitEventsClient(url);
  const seen = [];
  events.onEvent("*", (event) => seen.push(event));
  try {
    await within(5000, "WebSocket connection", (done) => {
      const poll = () => (events.webSocket?.readyState === 1 ? done(true) : setTimeout(poll, 20));
      poll();
    });
    const next = (type, test = () => true) =>
      within(5000, `"${type}" event`, (done) => {
        const poll = () => {
          const event = seen.find((e) => e.Type === type && test(e));
          return event ? done(event) : setTimeout(poll, 20);
        };
        poll();
      });

    // What happens in the other mailbox first, each event of which this client would take
    // for its own below if it were told of it.
    let elsewhere;
    if (other) {
      elsewhere = (await other.sendMessage(request)).ID;
      await other.setReadStatus({ IDs: [elsewhere], Read: true });
      await other.setTags({ IDs: [elsewhere], Tags: ["live"] });
      await other.deleteMessages({ IDs: [elsewhere] });
      await other.deleteMessages();
    }

    const sent = (await mailpit.sendMessage(request)).ID;
    const created = await next("new");
    assert.equal(created.Data.ID, sent);
    assert.equal(created.Data.Subject, "Welcome aboard");
    assert.deepEqual(keys(created.Data), SUMMARY);
    const stats = await next("stats");
    assert.deepEqual(keys(stats.Data), ["Total", "Unread", "Version"]);

    await mailpit.setReadStatus({ IDs: [sent], Read: true });
    assert.deepEqual((await next("update", (e) => "Read" in e.Data)).Data, { ID: sent, Read: true });
    await mailpit.setTags({ IDs: [sent], Tags: ["live"] });
    assert.deepEqual((await next("update", (e) => "Tags" in e.Data)).Data, { ID: sent, Tags: ["live"] });
    await mailpit.deleteMessages({ IDs: [sent] });
    assert.deepEqual((await next("delete")).Data, { ID: sent });
    await mailpit.sendMessage(request);
    await mailpit.deleteMessages();
    assert.equal((await next("truncate")).Data, null);
    await next("stats", (e) => e.Data.Total === 0 && e.Data.Unread === 0);
    assert.equal(seen.filter((e) => e.Type === "truncate").length, 1);
    if (elsewhere) assert.deepEqual(seen.filter((e) => e.Data?.ID === elsewhere), []);
  } finally {
    events.disconnect();
  }
});

await run();
