// Drives blueimp's npm package mailhog, unchanged, against the server at MAILSINK_URL through
// MailHog's API (v2 list and search, v1 delete and release). The messages are the ones
// tests/compat/test_mailhog_clients.py sends over SMTP first; expectations are what MailHog
// itself answers for them. MAILSINK_URL may be a mailbox's base URL (/m/NAME); the other
// mailbox at OTHER_MAILBOX_URL then holds the same three messages, which the checks that
// release or delete try on too: they must stay out of this client's reach.
import { createRequire } from "node:module";
import { assert, baseURL, check, otherMailboxURL, run } from "./checks.mjs";

const require = createRequire(import.meta.url);

/** The client for a base URL: it takes a host, a port and the path its API is under. */
function connect(base) {
  const url = new URL(base);
  const basePath = `${url.pathname.replace(/\/$/, "")}/api`;
  return require("mailhog")({ host: url.hostname, port: Number(url.port), basePath });
}

const mailhog = connect(baseURL());
const other = otherMailboxURL() && connect(otherMailboxURL());
const others = other ? (await other.messages()).items.map((m) => m.ID) : [];

/** On a mailbox, fails unless the other mailbox still holds its three messages. */
async function otherMailboxUntouched() {
  if (!other) return;
  assert.equal(others.length, 3, "the other mailbox got the same three messages");
  assert.deepEqual((await other.messages()).items.map((m) => m.ID), others);
}

check("list", async () => {
  const all = await mailhog.messages();
  assert.equal(all.total, 3);
  assert.equal(all.count, 3);
  assert.deepEqual(
    all.items.map((m) => m.subject),
    ["日本", "üäö", "ISO-8859-1"],
    "newest first, encoded-words decoded",
  );
  const page = await mailhog.messages(1, 1);
  assert.equal(page.start, 1);
  assert.deepEqual(page.items.map((m) => m.subject), ["üäö"]);
});

check("read", async () => {
  const latin = await mailhog.latestTo("iso-8859-1@example.org");
  assert.equal(latin.text, "üäö");
  assert.equal(latin.from, "Test <test@example.org>");
  assert.equal(latin.to, "ISO-8859-1 <iso-8859-1@example.org>");
  const multipart = await mailhog.latestTo("ueaeoe@example.org");
  assert.equal(multipart.text, "ü\r\näö");
  assert.equal(multipart.html, "<strong>ü<br>äö</strong>");
});

check("read keeps the body as MailHog stores it", async () => {
  // MailHog stores the DATA without the line break that ends it (smtp/protocol.go).
  const plain = await mailhog.latestTo("nihon@example.org");
  assert.equal(plain.text, "日本\n");
  assert.equal(plain.Content.Body.endsWith("\r\n"), false);
});

check("headers", async () => {
  const message = await mailhog.latestTo("nihon@example.org");
  assert.equal(message.cc, "日本 <cc@example.org>");
  assert.equal(message.bcc, "日本 <bcc@example.org>");
  assert.equal(message.replyTo, "日本 <reply-to@example.org>");
  assert.equal(message.date.getTime(), Date.parse("2016-10-23T18:59:40.000Z"));
  assert.ok(message.deliveryDate > message.date, "Created is the time it arrived");
  assert.deepEqual(message.Raw.To, ["nihon@example.org", "cc@example.org", "bcc@example.org"]);
  assert.equal(`${message.From.Mailbox}@${message.From.Domain}`, "test@example.org");
});

check("parts and attachments", async () => {
  const message = await mailhog.latestTo("ueaeoe@example.org");
  // MailHog splits the body at every "--boundary": the "--" after the last one is a part too.
  assert.equal(message.MIME.Parts.length, 4);
  const [attachment] = message.attachments;
  assert.equal(attachment.name, "dot.png");
  assert.equal(attachment.type, 'image/png; name="dot.png"', "the Content-Type as written");
  assert.equal(
    Buffer.from(attachment.Body, attachment.encoding).toString("base64"),
    process.env.ATTACHMENT_BASE64,
  );
});

check("search", async () => {
  const containing = await mailhog.search(mailhog.encode("üäö", "quoted-printable"));
  assert.deepEqual(containing.items.map((m) => m.subject), ["üäö"]);
  assert.equal((await mailhog.search("test@example.org", "from")).total, 3);
  assert.equal((await mailhog.search("cc@example.org", "to")).total, 1, "Cc counts as to");
  const page = await mailhog.search("example.org", undefined, 1, 1);
  assert.equal(page.count, 1);
  assert.equal(page.total, 3);
  assert.equal((await mailhog.latestFrom("test@example.org")).subject, "日本");
  assert.equal((await mailhog.latestContaining("dot.png")).subject, "üäö");
  assert.equal(await mailhog.latestTo("nobody@example.org"), 0);
});

check("release", async () => {
  // The client passes the body as given; its documentation writes the keys in lower case.
  const message = await mailhog.latestTo("nihon@example.org");
  const relay = { host: process.env.RELAY_HOST, port: process.env.RELAY_PORT };
  const response = await mailhog.releaseMessage(message.ID, { ...relay, email: "released@example.org" });
  assert.equal(response.statusCode, 200);
  for (const id of others) await mailhog.releaseMessage(id, { ...relay, email: "leaked@example.org" });
  await otherMailboxUntouched();
});

check("delete", async () => {
  const message = await mailhog.latestTo("iso-8859-1@example.org");
  assert.equal((await mailhog.deleteMessage(message.ID)).statusCode, 200);
  assert.equal(await mailhog.latestTo("iso-8859-1@example.org"), 0);
  assert.equal((await mailhog.messages()).total, 2);
  for (const id of others) await mailhog.deleteMessage(id);
  await otherMailboxUntouched();
});

check("delete all", async () => {
  const response = await mailhog.deleteAll();
  assert.equal(response.statusCode, 200, "MailHog answers an empty 200");
  assert.equal((await mailhog.messages()).total, 0);
  await otherMailboxUntouched();
});

await run();
