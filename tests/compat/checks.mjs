// A tiny harness for the client scripts: named checks run in order, each passing or failing
// on its own, and one JSON line on stdout with every outcome for pytest to read.
import assert from "node:assert/strict";

export { assert };

const checks = [];

/** Registers a check; `fn` throws (an assertion, a client error) to fail it. */
export function check(name, fn) {
  checks.push([name, fn]);
}

// A check that hangs (a client waiting for an answer that never comes) fails after this long,
// so that one missing behaviour does not stop the others from being reported.
const CHECK_LIMIT_MS = 20_000;

/** Runs every check in order, then prints {"name": null | "why it failed"} and exits. */
export async function run() {
  const outcomes = {};
  for (const [name, fn] of checks) {
    process.stderr.write(`check: ${name}\n`);
    let timer;
    const hung = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish in ${CHECK_LIMIT_MS} ms`)), CHECK_LIMIT_MS);
    });
    try {
      await Promise.race([fn(), hung]);
      outcomes[name] = null;
    } catch (error) {
      outcomes[name] = String(error?.stack ?? error);
    } finally {
      clearTimeout(timer);
    }
  }
  process.stdout.write(JSON.stringify(outcomes) + "\n");
  // Clients may leave sockets or reconnection timers behind; the outcomes are all written.
  process.exit(0);
}

/** The base URL of the server under test, from the environment. */
export function baseURL() {
  const url = process.env.MAILSINK_URL;
  if (!url) throw new Error("MAILSINK_URL is not set");
  return url;
}

/**
 * The base URL of another mailbox on the same server that holds the same mail, when the
 * server under test has mailboxes (MAILSINK_URL is then a mailbox's); undefined otherwise.
 */
export function otherMailboxURL() {
  return process.env.OTHER_MAILBOX_URL || undefined;
}

/** Keys of an object, sorted, for comparing a shape with another server's. */
export function keys(object) {
  return Object.keys(object).sort();
}

/** Resolves with the first value `probe` returns that is not undefined; rejects after `ms`. */
export function within(ms, what, probe) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    probe((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
