/**
 * A small typed client for the scorm-appliance HTTP API (fetch, ESM, no runtime dependencies).
 *
 *     import { Client } from "scorm-appliance-client";
 *     const client = new Client("http://127.0.0.1:8080", apiKey);
 *     const pkg = await client.waitUntilReady((await client.uploadPackage("course.zip")).id);
 *     const session = await client.createSession({ packageId: pkg.id, learnerId: "learner-42" });
 *
 * See docs/integration.md in the appliance's repository for the full walk-through.
 */
export * from "./client.js";
export * from "./errors.js";
export type * from "./models.js";
export * from "./webhooks.js";
