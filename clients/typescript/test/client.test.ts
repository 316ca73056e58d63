// The TypeScript client against a real appliance: tests/clients/test_clients.py starts one and passes
// SCORM_APPLIANCE_URL, SCORM_APPLIANCE_KEY, SCORM_APPLIANCE_LIMITED_KEY, COURSE_ZIP and WEBHOOK_VECTOR.
// Compiled with tsc and run with `node --test dist/test/`.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { before, test } from "node:test";

import {
  Client, CmiValidationError, InvalidPackage, NotFound, PackageFailed, PackageNotReady, paginate, RateLimited,
  Unauthorized, ValidationError, VersionConflict, verifyWebhook, WebhookVerificationError,
  type Package, type Session,
} from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through tests/clients/test_clients.py (make test)`);
  return value;
}

const url = env("SCORM_APPLIANCE_URL");
const key = env("SCORM_APPLIANCE_KEY");
const courseZip = env("COURSE_ZIP");
const client = new Client(url, key);
const learner = () => `ts-${randomUUID().slice(0, 10)}`;
const SCORE = {
  "cmi.score.raw": "80", "cmi.score.min": "0", "cmi.score.max": "100", "cmi.score.scaled": "0.8",
  "cmi.completion_status": "completed", "cmi.success_status": "passed",
};

let ready: Package;
before(async () => {
  ready = await client.waitUntilReady((await client.uploadPackage(courseZip, { title: "TS suite" })).id, { timeoutMs: 60_000 });
});

test("upload streams a file, waits until ready, versions, validate, delete", async () => {
  const uploaded = await client.uploadPackage(courseZip, { title: "From a path" });
  assert.equal(uploaded.status, "processing");
  const pkg = await client.waitUntilReady(uploaded.id, { timeoutMs: 60_000 });
  assert.equal(pkg.status, "ready");
  assert.equal(pkg.title, "From a path");
  assert.ok(client.rateLimit && client.rateLimit.limit > 0);
  const bytes = new Blob([await readFile(courseZip)]);
  assert.equal((await client.uploadPackageVersion(pkg.id, bytes)).latest_version, 2);
  assert.deepEqual((await client.listPackageVersions(pkg.id)).data.map((v) => v.version), [1, 2]);
  assert.equal((await client.getPackageVersion(pkg.id, 1)).status, "ready");
  assert.equal((await client.updatePackage(pkg.id, { title: "Renamed" })).title, "Renamed");
  assert.equal((await client.validatePackage(courseZip)).valid, true);
  const ids: string[] = [];
  for await (const p of paginate((cursor) => client.listPackages({ limit: 1, cursor }))) ids.push(p.id);
  assert.ok(ids.includes(pkg.id));
  await client.deletePackage(pkg.id);
  await assert.rejects(client.getPackage(pkg.id), NotFound);
});

test("a ReadableStream is sent as a raw application/zip body", async () => {
  const stream = Readable.toWeb(createReadStream(courseZip)) as ReadableStream<Uint8Array>;
  const uploaded = await client.uploadPackage(stream);
  assert.equal(uploaded.status, "processing");
  assert.equal((await client.waitUntilReady(uploaded.id, { timeoutMs: 60_000 })).status, "ready");
  await client.deletePackage(uploaded.id);
});

test("a body that is not a ZIP is InvalidPackage; a ZIP without a manifest fails processing", async () => {
  await assert.rejects(client.uploadPackage(new TextEncoder().encode("not a zip")), (e: unknown) => {
    assert.ok(e instanceof InvalidPackage);
    assert.equal(e.status, 422);
    assert.ok(e.requestId);
    return true;
  });
  // The smallest ZIP: one stored file "a.txt" ("hi"), no imsmanifest.xml.
  const zip = Uint8Array.from(Buffer.from(
    "UEsDBBQAAAAAAAAAIVCsKpPYAgAAAAIAAAAFAAAAYS50eHRoaVBLAQIUAxQAAAAAAAAAIVCsKpPYAgAAAAIAAAAFAAAAAAAAAAAAAACAAQAAAABhLnR4dFBLBQYAAAAAAQABADMAAAAlAAAAAAA=",
    "base64"));
  const failed = await client.uploadPackage(zip);
  await assert.rejects(client.waitUntilReady(failed.id, { timeoutMs: 60_000 }), (e: unknown) => {
    assert.ok(e instanceof PackageFailed);
    assert.equal(e.code, "MANIFEST_MISSING");
    return true;
  });
  await assert.rejects(client.createSession({ packageId: failed.id, learnerId: learner() }), PackageNotReady);
});

test("sessions: create, resume, launch, list, read, delete", async () => {
  const who = learner();
  const session = await client.createSession({ packageId: ready.id, learnerId: who, learnerName: "Ann Learner" });
  assert.equal(session.status, "not_started");
  assert.match(session.launch_url ?? "", /\/player\//);
  assert.equal((await client.createSession({ packageId: ready.id, learnerId: who })).id, session.id);
  const fresh = await client.createSession({ packageId: ready.id, learnerId: who, resume: false });
  assert.notEqual(fresh.id, session.id);
  const launch = await client.launchSession(session.id);
  assert.ok(launch.launch_url.startsWith(client.baseUrl));
  const listed = await client.listSessions({ package_id: ready.id, learner_id: who });
  assert.deepEqual(new Set(listed.data.map((s) => s.id)), new Set([session.id, fresh.id]));
  const searched = await client.listSessions({ learner: who.slice(2).toUpperCase() }); // a part of the id, case ignored
  assert.deepEqual(new Set(searched.data.map((s) => s.id)), new Set([session.id, fresh.id]));
  await client.deleteSession(fresh.id);
  await assert.rejects(client.getSession(fresh.id), NotFound);
});

test("PATCH with optimistic locking, and the retry helper on a real 409", async () => {
  const session = await client.createSession({ packageId: ready.id, learnerId: learner() });
  const updated = await client.updateSession(session.id, { version: session.version, cmi: SCORE });
  assert.equal(updated.status, "passed");
  assert.equal(updated.score.scaled, 0.8);
  await assert.rejects(client.updateSession(session.id, { version: session.version, cmi: { "cmi.location": "2" } }),
    (e: unknown) => e instanceof VersionConflict && e.currentVersion === updated.version);
  await assert.rejects(client.updateSession(session.id, { version: updated.version, cmi: { "cmi.score.scaled": "7" } }),
    (e: unknown) => e instanceof CmiValidationError && e.errors[0]?.element === "cmi.score.scaled");
  const seen: number[] = [];
  const result = await client.updateSessionWithRetry(session.id, async (current: Session) => {
    seen.push(current.version);
    if (seen.length === 1) await client.updateSession(session.id, { version: current.version, cmi: { "cmi.location": "elsewhere" } });
    return { "cmi.location": `${current.cmi?.["cmi.location"] ?? ""}+mine` };
  });
  assert.equal(seen.length, 2);
  assert.equal(seen[1], seen[0]! + 1);
  assert.equal((await client.getSession(session.id, { includeCmi: true })).cmi?.["cmi.location"], "elsewhere+mine");
  assert.equal(result.version, seen[1]! + 1);
});

test("analytics", async () => {
  const session = await client.createSession({ packageId: ready.id, learnerId: learner() });
  await client.updateSession(session.id, { version: session.version, cmi: SCORE });
  const report = await client.packageAnalytics(ready.id);
  assert.ok(report.passed >= 1 && report.score.count >= 1);
  const summary = await client.analyticsSummary({ days: 7 });
  assert.ok(summary.sessions.by_status.passed >= 1);
  assert.match(await client.packageAnalyticsCsv(ready.id, "sessions_by_status"), /passed/);
});

test("typed errors", async () => {
  await assert.rejects(client.getSession("ses_doesnotexist"), (e: unknown) => e instanceof NotFound && e.status === 404);
  await assert.rejects(client.listPackages({ limit: 100000 }), (e: unknown) => e instanceof ValidationError && e.errors.length > 0);
  await assert.rejects(new Client(url, "sak_not_a_real_key").getTenant(), Unauthorized);
});

test("webhooks: CRUD, deliveries, and verifying a request the server's own code signed", async () => {
  const hook = await client.createWebhook({ url: "https://lms.example.org/hooks", events: ["session.*"], description: "LMS" });
  assert.match(hook.secret ?? "", /^whsec_/);
  assert.equal((await client.getWebhook(hook.id)).secret, undefined);
  assert.equal((await client.updateWebhook(hook.id, { description: "renamed" })).description, "renamed");
  assert.ok((await client.listWebhooks()).data.some((h) => h.id === hook.id));
  const delivery = await client.testWebhook(hook.id);
  assert.equal(delivery.event_type, "ping");
  assert.equal((await client.getDelivery(hook.id, delivery.id)).id, delivery.id);
  assert.ok((await client.listDeliveries(hook.id)).data.some((d) => d.id === delivery.id));
  assert.equal((await client.retryDelivery(hook.id, delivery.id)).id, delivery.id);
  await client.deleteWebhook(hook.id);
  await assert.rejects(client.getWebhook(hook.id), NotFound);

  const vector = JSON.parse(env("WEBHOOK_VECTOR")) as { secret: string; headers: Record<string, string>; body: string };
  const now = Number(vector.headers["webhook-timestamp"]);
  const event = await verifyWebhook(vector.secret, vector.headers, vector.body, { now });
  assert.equal(event.type, "ping");
  assert.equal(event.id, vector.headers["webhook-id"]);
  assert.ok(await verifyWebhook(vector.secret, new Headers(vector.headers), new TextEncoder().encode(vector.body), { now }));
  const refuse = (p: Promise<unknown>) => assert.rejects(p, WebhookVerificationError);
  await refuse(verifyWebhook(vector.secret, vector.headers, vector.body + " ", { now }));
  await refuse(verifyWebhook(vector.secret, { ...vector.headers, "webhook-id": "evt_other" }, vector.body, { now }));
  await refuse(verifyWebhook(vector.secret, vector.headers, vector.body, { now: now + 3600 }));
});

test("xAPI credentials", async () => {
  const credential = await client.createXapiCredential({ name: "TS suite", scope: "read" });
  assert.equal(credential.key, credential.id);
  assert.ok(credential.secret && credential.endpoint.endsWith("/xapi/"));
  assert.equal((await client.getXapiCredential(credential.id)).secret, undefined);
  assert.ok((await client.listXapiCredentials()).data.some((c) => c.id === credential.id));
  assert.equal((await client.revokeXapiCredential(credential.id)).status, "revoked");
});

test("a 429 is RateLimited, and retries sleep its Retry-After", async () => {
  const limited = env("SCORM_APPLIANCE_LIMITED_KEY");
  const once = new Client(url, limited, { maxRetries: 0 });
  let refused: RateLimited | undefined;
  for (let i = 0; i < 20 && !refused; i++) {
    try { await once.getUsage(); } catch (e) { if (e instanceof RateLimited) refused = e; else throw e; }
  }
  assert.ok(refused && refused.retryAfter > 0 && refused.retryAfter <= 60);
  assert.equal(refused.headers.get("retry-after"), String(refused.retryAfter));
  const slept: number[] = [];
  const patient = new Client(url, limited, { maxRetries: 2, sleep: async (s) => { slept.push(s); } });
  await assert.rejects(patient.getUsage(), RateLimited);
  assert.equal(slept.length, 2);
  assert.ok(slept.every((s) => s > 0 && s <= 60));
});
