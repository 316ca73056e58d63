/**
 * Verifying the appliance's webhook requests (Standard Webhooks, docs/webhooks.md), with Web Crypto
 * only, so it runs in Node 18+, Deno, Bun and edge runtimes alike.
 *
 * The server signs `<webhook-id>.<webhook-timestamp>.<raw body>` with HMAC-SHA256 under the secret's
 * base64-decoded bytes (after `whsec_`) and sends `v1,<base64>`. Verify over the raw body, before
 * parsing it, in constant time, and refuse stale timestamps so a captured request cannot be replayed.
 */

import { WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./models.js";

const SECRET_PREFIX = "whsec_";
export const DEFAULT_TOLERANCE_SECONDS = 300;

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : value;
  }
  return undefined;
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function asBytes(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === "string") return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

/** The `webhook-signature` value the server sends for this message: `v1,<base64>`. */
export async function signWebhook(
  secret: string, messageId: string, timestamp: number, body: string | Uint8Array | ArrayBuffer,
): Promise<string> {
  let key: Uint8Array;
  try {
    key = fromBase64(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret);
  } catch {
    throw new WebhookVerificationError("the webhook secret is not a whsec_ base64 secret");
  }
  const hmacKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prefix = new TextEncoder().encode(`${messageId}.${timestamp}.`);
  const raw = asBytes(body);
  const message = new Uint8Array(prefix.length + raw.length);
  message.set(prefix);
  message.set(raw, prefix.length);
  const digest = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, message));
  return `v1,${toBase64(digest)}`;
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface VerifyOptions {
  toleranceSeconds?: number;
  /** Seconds since the epoch to check the timestamp against (default: now). */
  now?: number;
}

/**
 * Check a webhook request and return its event; throw WebhookVerificationError if it is not genuine.
 * `body` must be the raw body received (a string or bytes), not re-serialised JSON.
 */
export async function verifyWebhook<D = Record<string, unknown>>(
  secret: string, headers: HeaderSource, body: string | Uint8Array | ArrayBuffer, options: VerifyOptions = {},
): Promise<WebhookEvent<D>> {
  const id = header(headers, "webhook-id");
  const timestampText = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestampText || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  const timestamp = Number(timestampText);
  if (!Number.isInteger(timestamp)) throw new WebhookVerificationError("webhook-timestamp is not a number");
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError("webhook-timestamp is outside the tolerance");
  }
  const expected = await signWebhook(secret, id, timestamp, body);
  // Several space-separated signatures may be sent (during a secret rotation): any one matching will do.
  if (!signatures.split(" ").some((candidate) => constantTimeEqual(candidate, expected))) {
    throw new WebhookVerificationError("no webhook-signature matches");
  }
  try {
    const event = JSON.parse(new TextDecoder().decode(asBytes(body))) as WebhookEvent<D>;
    if (typeof event.id !== "string" || typeof event.type !== "string") throw new Error("not an event");
    return event;
  } catch {
    throw new WebhookVerificationError("the signed body is not a webhook event");
  }
}
