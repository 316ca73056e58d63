/**
 * The client: `fetch` only, so it has no runtime dependencies. What it adds over raw HTTP: types,
 * typed errors, uploads streamed from disk, `Retry-After` honoured on 429, `waitUntilReady` with
 * exponential backoff and `updateSessionWithRetry` for optimistic locking.
 */

import { errorFromResponse, PackageFailed, RateLimited, VersionConflict, WaitTimeout } from "./errors.js";
import type {
  AnalyticsSummary, CreateSession, Delivery, Launch, Package, PackageAnalytics, PackageChanges, PackageVersion,
  Page, RateLimit, Session, SessionPatch, Webhook, WebhookChanges, XapiCredential,
} from "./models.js";

export const VERSION = "0.1.0";

/** A ZIP to upload: a file path (Node), a Blob/File, bytes, or a stream (sent raw, never retried). */
export type UploadSource = string | Blob | Uint8Array | ReadableStream<Uint8Array>;

export interface ClientOptions {
  /** How many times a 429 is retried after sleeping its Retry-After (default 2). */
  maxRetries?: number;
  /** Per-request timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Replace the sleeping (tests, schedulers); gets seconds. */
  sleep?: (seconds: number) => Promise<void>;
  fetch?: typeof fetch;
}

interface CallSpec {
  path?: Record<string, string | number>;
  query?: Record<string, string | number | boolean | undefined | null>;
  json?: unknown;
  upload?: { source: UploadSource; fields?: Record<string, string | undefined> };
  text?: boolean;
}

const defaultSleep = (seconds: number) => new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000));

async function blobFromPath(path: string): Promise<Blob> {
  // Loaded only when a path is given, so the client stays usable outside Node.
  const fsName = "node:fs";
  const fs = (await import(fsName)) as {
    openAsBlob?: (p: string, o?: { type?: string }) => Promise<Blob>;
    promises: { readFile(p: string): Promise<Uint8Array> };
  };
  if (fs.openAsBlob) return fs.openAsBlob(path, { type: "application/zip" }); // streamed from disk (Node 19.8+)
  return new Blob([await fs.promises.readFile(path)], { type: "application/zip" });
}

function basename(path: string): string {
  return path.split(/[\\/]/).pop() || "package.zip";
}

/** Every item of a list, page after page: `for await (const s of paginate((c) => client.listSessions({cursor: c})))`. */
export async function* paginate<T>(fetchPage: (cursor?: string) => Promise<Page<T>>): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* page.data;
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
}

export class Client {
  readonly baseUrl: string;
  /** The `RateLimit-*` headers of the last answer. */
  rateLimit: RateLimit | null = null;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly sleep: (seconds: number) => Promise<void>;
  private readonly fetchImpl: typeof fetch;

  constructor(baseUrl: string, private readonly apiKey: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
    this.maxRetries = options.maxRetries ?? 2;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.sleep = options.sleep ?? defaultSleep;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private url(template: string, spec: CallSpec): string {
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = spec.path?.[name];
      if (value === undefined) throw new TypeError(`missing path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const url = new URL(`${this.baseUrl}/api/v1${path}`);
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  private async body(spec: CallSpec): Promise<{ body?: BodyInit; headers: Record<string, string>; replayable: boolean }> {
    if (spec.json !== undefined) {
      return { body: JSON.stringify(spec.json), headers: { "content-type": "application/json" }, replayable: true };
    }
    if (!spec.upload) return { headers: {}, replayable: true };
    const { source, fields } = spec.upload;
    if (source instanceof ReadableStream) {
      return { body: source, headers: { "content-type": "application/zip" }, replayable: false };
    }
    const blob = typeof source === "string" ? await blobFromPath(source)
      : source instanceof Blob ? source : new Blob([source], { type: "application/zip" });
    const form = new FormData();
    form.set("file", blob, typeof source === "string" ? basename(source) : "package.zip");
    for (const [key, value] of Object.entries(fields ?? {})) if (value !== undefined) form.set(key, value);
    return { body: form, headers: {}, replayable: true };
  }

  /** Send one operation of the schema (method and path template as in /api/v1/openapi.json). */
  private async call<T>(method: string, template: string, spec: CallSpec = {}): Promise<T> {
    const url = this.url(template, spec);
    const { body, headers, replayable } = await this.body(spec);
    for (let attempt = 0; ; attempt++) {
      const init: RequestInit & { duplex?: string } = {
        method,
        body,
        headers: {
          authorization: `Bearer ${this.apiKey}`,
          accept: "application/json",
          "user-agent": `scorm-appliance-client-typescript/${VERSION}`,
          ...headers,
        },
        signal: AbortSignal.timeout(this.timeoutMs),
      };
      if (body instanceof ReadableStream) init.duplex = "half";
      const response = await this.fetchImpl(url, init);
      this.noteRateLimit(response.headers);
      if (response.ok) {
        if (spec.text) return (await response.text()) as T;
        const text = await response.text();
        return (text ? JSON.parse(text) : undefined) as T;
      }
      const text = await response.text();
      let parsed: unknown = null;
      try { parsed = JSON.parse(text); } catch { /* not the contract's body: still a typed ApiError */ }
      const error = errorFromResponse(response.status, parsed, response.headers);
      if (!(error instanceof RateLimited) || attempt >= this.maxRetries || !replayable) throw error;
      await this.sleep(error.retryAfter);
    }
  }

  private noteRateLimit(headers: Headers): void {
    const [limit, remaining, reset] = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"].map((h) => headers.get(h));
    if (limit !== null && remaining !== null && reset !== null) {
      this.rateLimit = { limit: Number(limit), remaining: Number(remaining), resetSeconds: Number(reset) };
    }
  }

  // -- system ------------------------------------------------------------------------------------

  health(): Promise<{ status: string; version: string }> { return this.call("GET", "/health"); }
  /** The tenant these credentials belong to, and how they authenticated. */
  getTenant(): Promise<Record<string, unknown>> { return this.call("GET", "/tenant"); }
  /** Stored bytes and API requests against the tenant's limits. */
  getUsage(): Promise<Record<string, unknown>> { return this.call("GET", "/usage"); }

  // -- packages ----------------------------------------------------------------------------------

  /** Upload a ZIP, streamed; the package comes back `processing`. */
  uploadPackage(file: UploadSource, options: { title?: string } = {}): Promise<Package> {
    return this.call("POST", "/packages", { upload: { source: file, fields: { title: options.title } } });
  }
  uploadPackageVersion(packageId: string, file: UploadSource): Promise<Package> {
    return this.call("POST", "/packages/{package_id}/versions", { path: { package_id: packageId }, upload: { source: file } });
  }
  /** Every processing check on a ZIP, synchronously; nothing is kept. */
  validatePackage(file: UploadSource): Promise<{ valid: boolean; error: unknown; [field: string]: unknown }> {
    return this.call("POST", "/packages/validate", { upload: { source: file } });
  }
  listPackages(query: { status?: string; limit?: number; cursor?: string } = {}): Promise<Page<Package>> {
    return this.call("GET", "/packages", { query });
  }
  getPackage(packageId: string): Promise<Package> {
    return this.call("GET", "/packages/{package_id}", { path: { package_id: packageId } });
  }
  updatePackage(packageId: string, changes: PackageChanges): Promise<Package> {
    return this.call("PATCH", "/packages/{package_id}", { path: { package_id: packageId }, json: changes });
  }
  async deletePackage(packageId: string): Promise<void> {
    await this.call("DELETE", "/packages/{package_id}", { path: { package_id: packageId } });
  }
  listPackageVersions(packageId: string): Promise<Page<PackageVersion>> {
    return this.call("GET", "/packages/{package_id}/versions", { path: { package_id: packageId } });
  }
  getPackageVersion(packageId: string, version: number): Promise<PackageVersion> {
    return this.call("GET", "/packages/{package_id}/versions/{version}", { path: { package_id: packageId, version } });
  }

  /** Poll until `ready` (resolved) or `failed` (PackageFailed), with exponential backoff. */
  async waitUntilReady(
    packageId: string, options: { timeoutMs?: number; initialDelayMs?: number; maxDelayMs?: number } = {},
  ): Promise<Package> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    let delay = options.initialDelayMs ?? 250;
    for (;;) {
      const pkg = await this.getPackage(packageId);
      if (pkg.status === "ready") return pkg;
      if (pkg.status === "failed") throw new PackageFailed(pkg);
      if (Date.now() + delay > deadline) throw new WaitTimeout(`package ${packageId} still ${pkg.status}`);
      await this.sleep(delay / 1000);
      delay = Math.min(options.maxDelayMs ?? 5_000, delay * 2);
    }
  }

  // -- sessions ----------------------------------------------------------------------------------

  /** A session for a learner; with `resume` (the default) their unfinished one if they have it. */
  createSession(input: CreateSession): Promise<Session> {
    const json: Record<string, unknown> = {
      package_id: input.packageId,
      learner: input.learnerName === undefined ? { id: input.learnerId } : { id: input.learnerId, name: input.learnerName },
      resume: input.resume ?? true,
    };
    if (input.packageVersion !== undefined) json.package_version = input.packageVersion;
    return this.call("POST", "/sessions", { json });
  }
  /** `learner_id` is an exact learner id; `learner` finds learners whose id or name contains it. */
  listSessions(
    query: {
      package_id?: string; learner_id?: string; learner?: string; status?: string; limit?: number; cursor?: string;
    } = {},
  ): Promise<Page<Session>> {
    return this.call("GET", "/sessions", { query });
  }
  getSession(sessionId: string, options: { includeCmi?: boolean } = {}): Promise<Session> {
    return this.call("GET", "/sessions/{session_id}", {
      path: { session_id: sessionId }, query: { include: options.includeCmi ? "cmi" : undefined },
    });
  }
  /** PATCH with optimistic locking: VersionConflict when `version` is stale (nothing changed). */
  updateSession(sessionId: string, patch: SessionPatch): Promise<Session> {
    return this.call("PATCH", "/sessions/{session_id}", { path: { session_id: sessionId }, json: patch });
  }
  /**
   * Read the session, let `change(session)` decide the CMI writes, PATCH; on a 409 read and decide
   * again (the point of the 409 is to look before writing again). `null` from `change`: nothing to write.
   */
  async updateSessionWithRetry(
    sessionId: string,
    change: (session: Session) => Record<string, string> | null | Promise<Record<string, string> | null>,
    options: { attempts?: number; activity?: string } = {},
  ): Promise<Session> {
    const attempts = options.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      const session = await this.getSession(sessionId, { includeCmi: true });
      const cmi = await change(session);
      if (cmi === null) return session;
      try {
        const patch: SessionPatch = { version: session.version, cmi };
        if (options.activity !== undefined) patch.activity = options.activity;
        return await this.updateSession(sessionId, patch);
      } catch (error) {
        if (!(error instanceof VersionConflict) || attempt >= attempts) throw error;
      }
    }
  }
  /** A fresh signed launch URL for the learner's browser. */
  launchSession(sessionId: string): Promise<Launch> {
    return this.call("POST", "/sessions/{session_id}/launch", { path: { session_id: sessionId } });
  }
  async deleteSession(sessionId: string): Promise<void> {
    await this.call("DELETE", "/sessions/{session_id}", { path: { session_id: sessionId } });
  }

  // -- analytics ---------------------------------------------------------------------------------

  analyticsSummary(query: { days?: number } = {}): Promise<AnalyticsSummary> {
    return this.call("GET", "/analytics/summary", { query });
  }
  packageAnalytics(packageId: string, query: { days?: number } = {}): Promise<PackageAnalytics> {
    return this.call("GET", "/analytics/packages/{package_id}", { path: { package_id: packageId }, query });
  }
  /** One table of the package's report as CSV (per-question statistics unless `section` is given). */
  packageAnalyticsCsv(packageId: string, section?: string): Promise<string> {
    return this.call("GET", "/analytics/packages/{package_id}", {
      path: { package_id: packageId }, query: { format: "csv", section }, text: true,
    });
  }

  // -- webhooks ----------------------------------------------------------------------------------

  /** Register an endpoint; `secret` in the answer is shown this once: store it. */
  createWebhook(input: { url: string; events: string[]; description?: string; enabled?: boolean }): Promise<Webhook> {
    return this.call("POST", "/webhooks", { json: input });
  }
  listWebhooks(query: { limit?: number; cursor?: string } = {}): Promise<Page<Webhook>> {
    return this.call("GET", "/webhooks", { query });
  }
  getWebhook(webhookId: string): Promise<Webhook> {
    return this.call("GET", "/webhooks/{webhook_id}", { path: { webhook_id: webhookId } });
  }
  updateWebhook(webhookId: string, changes: WebhookChanges): Promise<Webhook> {
    return this.call("PATCH", "/webhooks/{webhook_id}", { path: { webhook_id: webhookId }, json: changes });
  }
  async deleteWebhook(webhookId: string): Promise<void> {
    await this.call("DELETE", "/webhooks/{webhook_id}", { path: { webhook_id: webhookId } });
  }
  /** Queue a `ping` event for the endpoint. */
  testWebhook(webhookId: string): Promise<Delivery> {
    return this.call("POST", "/webhooks/{webhook_id}/test", { path: { webhook_id: webhookId } });
  }
  listDeliveries(
    webhookId: string, query: { status?: string; limit?: number; cursor?: string } = {},
  ): Promise<Page<Delivery>> {
    return this.call("GET", "/webhooks/{webhook_id}/deliveries", { path: { webhook_id: webhookId }, query });
  }
  getDelivery(webhookId: string, deliveryId: string): Promise<Delivery> {
    return this.call("GET", "/webhooks/{webhook_id}/deliveries/{delivery_id}", {
      path: { webhook_id: webhookId, delivery_id: deliveryId },
    });
  }
  retryDelivery(webhookId: string, deliveryId: string): Promise<Delivery> {
    return this.call("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", {
      path: { webhook_id: webhookId, delivery_id: deliveryId },
    });
  }

  // -- xAPI LRS credentials ----------------------------------------------------------------------

  /** A credential for the built-in LRS; `key` and `secret` are shown this once. */
  createXapiCredential(input: { name?: string; scope?: "all" | "read" | "write" } = {}): Promise<XapiCredential> {
    return this.call("POST", "/xapi/credentials", { json: input });
  }
  listXapiCredentials(query: { limit?: number; cursor?: string } = {}): Promise<Page<XapiCredential>> {
    return this.call("GET", "/xapi/credentials", { query });
  }
  getXapiCredential(credentialId: string): Promise<XapiCredential> {
    return this.call("GET", "/xapi/credentials/{credential_id}", { path: { credential_id: credentialId } });
  }
  /** Revoke at once; the credential stays listed as `revoked`. */
  revokeXapiCredential(credentialId: string): Promise<XapiCredential> {
    return this.call("DELETE", "/xapi/credentials/{credential_id}", { path: { credential_id: credentialId } });
  }
}
