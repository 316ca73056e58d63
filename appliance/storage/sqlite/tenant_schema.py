"""Migrations("tenant"): the tables inside each tenant's own database file, in the order they run.

The steps live with their domain in appliance.storage.sqlite.tenant_tables (tenancy, library, delivery,
learning, lrs, lms); this module is their one order. A tenant file records the steps it has applied by
name, and the PostgreSQL schema (appliance.storage.postgres) is generated from the same steps in the
same order, so a new step is appended at the end of `STEPS`, never inserted.
"""

from __future__ import annotations

from appliance.storage.sqlite.migrations import Migrations
from appliance.storage.sqlite.tenant_tables.delivery import m003_events_outbox, m005_webhooks
from appliance.storage.sqlite.tenant_tables.learning import (
    m004_sessions,
    m007_analytics,
    m008_session_row_bytes,
    m017_cmi5_registrations,
    m018_cmi5_preferences_read,
)
from appliance.storage.sqlite.tenant_tables.library import (
    m002_packages,
    m009_package_suspend_data_limit,
    m015_cmi5_packages,
)
from appliance.storage.sqlite.tenant_tables.lms import m014_lti, m016_dispatches, m019_lti_memberships
from appliance.storage.sqlite.tenant_tables.lrs import (
    m010_xapi_statements,
    m011_xapi_documents,
    m012_xapi_forwarding,
    m013_xapi_scorm,
    m020_xapi_bytes,
    m021_xapi_staged_keys,
)
from appliance.storage.sqlite.tenant_tables.tenancy import m001_meta, m006_quota_state

STEPS = (
    m001_meta,
    m002_packages,
    m003_events_outbox,
    m004_sessions,
    m005_webhooks,
    m006_quota_state,
    m007_analytics,
    m008_session_row_bytes,
    m009_package_suspend_data_limit,
    m010_xapi_statements,
    m011_xapi_documents,
    m012_xapi_forwarding,
    m013_xapi_scorm,
    m014_lti,
    m015_cmi5_packages,
    m016_dispatches,
    m017_cmi5_registrations,
    m018_cmi5_preferences_read,
    m019_lti_memberships,
    m020_xapi_bytes,
    m021_xapi_staged_keys,
)

tenant_migrations = Migrations("tenant")
for _step in STEPS:
    tenant_migrations(_step)
