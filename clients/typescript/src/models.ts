/**
 * The API's JSON objects as types (docs/api.md). Objects come back as the server sent them, so
 * fields added later are there too; these types name the ones integrations use.
 */

export interface ErrorObject {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export interface Page<T> {
  data: T[];
  /** Pass back as `cursor` for the next page; null on the last one. */
  next_cursor: string | null;
}

export interface RateLimit {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

export type PackageStatus = "processing" | "ready" | "failed";

export interface Package {
  id: string;
  title: string | null;
  status: PackageStatus;
  error: ErrorObject | null;
  latest_version: number;
  active_version: number | null;
  scorm_version: "1.2" | "2004 2nd Edition" | "2004 3rd Edition" | "2004 4th Edition" | null;
  warnings: ErrorObject[];
  capabilities: Record<string, { used: boolean; supported: boolean }>;
  size_bytes: number;
  file_count: number;
  sco_count: number;
  launch: { organization: string; title: string; items: unknown[] } | null;
  created_at: string;
  updated_at: string;
  [field: string]: unknown;
}

export interface PackageVersion {
  package_id: string;
  version: number;
  status: PackageStatus;
  error: ErrorObject | null;
  scorm_version: string | null;
  upload_sha256: string | null;
  [field: string]: unknown;
}

export interface PackageChanges {
  title?: string;
  active_version?: number | null;
  migrate_sessions?: "none" | "incomplete" | "all";
  scorm12_suspend_data_limit?: number | null;
}

export type SessionStatus = "not_started" | "incomplete" | "completed" | "passed" | "failed" | "expired";

export interface Score {
  raw: number | null;
  min: number | null;
  max: number | null;
  scaled: number | null;
}

export interface Session {
  id: string;
  package_id: string;
  package_version: number;
  learner: { id: string; name: string | null };
  status: SessionStatus;
  completion_status: string | null;
  success_status: string | null;
  score: Score;
  progress_measure: number | null;
  total_time: string;
  total_time_seconds: number;
  attempt: number;
  /** The optimistic-lock token for `updateSession`. */
  version: number;
  launch_url: string | null;
  created_at: string;
  updated_at: string;
  last_activity_at: string | null;
  expires_at: string | null;
  /** With `includeCmi`: the current SCO's CMI data, flat dotted names to strings. */
  cmi?: Record<string, string>;
  [field: string]: unknown;
}

export interface CreateSession {
  packageId: string;
  learnerId: string;
  learnerName?: string;
  packageVersion?: number;
  /** Return the learner's unfinished session on the package if there is one (default true). */
  resume?: boolean;
}

export interface SessionPatch {
  version: number;
  cmi?: Record<string, string>;
  activity?: string;
  expires_at?: string;
}

export interface Launch {
  session_id: string;
  launch_url: string;
  expires_at: string;
}

export interface Webhook {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  disabled_reason: string | null;
  /** Only in the answer that created the endpoint. */
  secret?: string;
  [field: string]: unknown;
}

export interface WebhookChanges {
  url?: string;
  events?: string[];
  description?: string | null;
  enabled?: boolean;
}

export interface Delivery {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempt_count: number;
  last_status_code: number | null;
  attempts?: Array<Record<string, unknown>>;
  [field: string]: unknown;
}

export interface WebhookEvent<D = Record<string, unknown>> {
  id: string;
  type: string;
  created_at: string;
  tenant_id: string;
  data: D;
}

export interface XapiCredential {
  id: string;
  name: string | null;
  scope: "all" | "read" | "write";
  status: "active" | "revoked";
  endpoint: string;
  /** `key` and `secret` (HTTP Basic for the LRS) only in the answer that created it. */
  key?: string;
  secret?: string;
  [field: string]: unknown;
}

export interface AnalyticsSummary {
  sessions: { total: number; by_status: Record<SessionStatus, number> };
  completed: number;
  passed: number;
  failed: number;
  completion_rate: number | null;
  pass_rate: number | null;
  [field: string]: unknown;
}

export interface PackageAnalytics extends AnalyticsSummary {
  package_id: string;
  score: { count: number; average_scaled: number | null; distribution: Array<{ min: number; max: number; count: number }> };
  interactions: Array<Record<string, unknown>>;
}
