"""create_app(config): the one place that assembles the Litestar application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from appliance.clock import Clock
from appliance.config import Config
from appliance.faces.api.analytics import AnalyticsController
from appliance.faces.api.cmi5 import Cmi5AuSessionController, Cmi5FetchController, Cmi5SessionController
from appliance.faces.api.commit_endpoint import CommitEndpoint, commit_token
from appliance.faces.api.deps import provide_instance, provide_principal
from appliance.faces.api.dispatch import DispatchController, DispatchRelayController
from appliance.faces.api.docs import openapi_config, swagger_assets_router
from appliance.faces.api.errors import EXCEPTION_HANDLERS
from appliance.faces.api.hosts import HostRouter, host_router
from appliance.faces.api.lrs import LrsCredentialController, LrsForwardingController
from appliance.faces.api.lrs_scorm import LrsScormController
from appliance.faces.api.lti import LtiAdminController, LtiToolController
from appliance.faces.api.middleware import (
    STATIC_HEADERS,
    add_request_id,
    header_limit_middleware,
    response_headers_middleware,
)
from appliance.faces.api.packages import PackageController
from appliance.faces.api.player import PlayerController
from appliance.faces.api.sessions import SessionController
from appliance.faces.api.system import SystemController
from appliance.faces.api.tenant import TenantController
from appliance.faces.api.usage import UsageController
from appliance.faces.api.webhooks import WebhookController
from appliance.faces.api.xapi.app import XapiApp, xapi_path
from appliance.faces.console.render import template_config
from appliance.faces.console.routes import console_router
from appliance.instance import Instance
from appliance.logging_setup import access_log_middleware
from appliance.services.delivery import jobs, outbound, webhook_attempts, webhook_deliveries
from appliance.services.delivery.scheduler import Scheduler
from appliance.services.learning import cmi5_registrations, sessions
from appliance.services.library import package_sweep, packages
from appliance.services.lms.lti import ags as lti_ags
from appliance.services.lrs import forwarding, forwarding_targets, scorm_statements
from appliance.services.tenancy import quota_events
from appliance.services.tenancy.jwtauth import JwksCache
from appliance.services.tenancy.rate_limiters import api_limiter, auth_failure_limiter, learner_limits
from appliance.services.tenancy.ratelimit import RequestCounter

log = logging.getLogger("appliance")

ROUTE_HANDLERS: list[Any] = [
    SystemController,
    TenantController,
    PackageController,
    SessionController,
    PlayerController,
    WebhookController,
    UsageController,
    AnalyticsController,
    LrsCredentialController,
    LrsForwardingController,
    LrsScormController,
    LtiToolController,
    LtiAdminController,
    DispatchController,
    DispatchRelayController,
    Cmi5FetchController,
    Cmi5SessionController,
    Cmi5AuSessionController,
]


def static_router() -> Any:
    """The player's own JavaScript and CSS (no build step), with nosniff and no framing (STATIC_HEADERS)."""
    return create_static_files_router(
        path="/static",
        directories=[Path(__file__).parent / "static"],
        include_in_schema=False,
        send_as_attachment=False,
        middleware=[response_headers_middleware(STATIC_HEADERS)],
    )


def build_scheduler(inst: Instance) -> Scheduler:
    """The scheduler with every job kind and periodic sweep registered."""
    scheduler = Scheduler(
        inst,
        concurrency=inst.config.job_concurrency,
        poll_seconds=inst.config.job_poll_seconds,
        lease_seconds=inst.config.job_lease_seconds,
    )
    scheduler.register(packages.PROCESS_JOB, packages.process_version, packages.give_up_processing)
    scheduler.every("recover-processing", 300.0, packages.recover_processing)
    scheduler.every("orphan-files", package_sweep.SWEEP_SECONDS, package_sweep.sweep_orphan_files)
    scheduler.every("expire-sessions", inst.config.expiry_sweep_seconds, sessions.expire_sessions)
    scheduler.every("cmi5-abandon", inst.config.expiry_sweep_seconds, cmi5_registrations.abandon_stale)
    scheduler.register(webhook_attempts.DELIVER_JOB, webhook_attempts.deliver)
    scheduler.every("webhook-dispatch", inst.config.webhook_dispatch_seconds, webhook_deliveries.dispatch_all)
    scheduler.every("webhook-recover", 60.0, webhook_deliveries.recover_deliveries)
    scheduler.every("quota-watch", 60.0, quota_events.watch)
    scheduler.every("xapi-scorm-statements", inst.config.xapi_scorm_flush_seconds, scorm_statements.flush_all)
    scheduler.register(forwarding_targets.FORWARD_JOB, forwarding.forward)
    scheduler.every("xapi-forward", forwarding.SWEEP_SECONDS, forwarding.sweep)
    scheduler.every("xapi-forward-purge", 3600.0, forwarding.purge_jobs)
    scheduler.register(lti_ags.SCORE_JOB, lti_ags.post_score)
    scheduler.every("lti-ags", lti_ags.SWEEP_SECONDS, lti_ags.sweep)
    # Every webhook attempt is a job: finished ones are kept a week for inspection, then dropped.
    scheduler.every("purge-jobs", 3600.0, lambda i: jobs.purge_finished(i.registry, i.clock.now() - 7 * 86_400))
    return scheduler


class Appliance(Litestar):
    """The Litestar application, with learner commits (appliance.faces.api.commit_endpoint) and the xAPI LRS
    (appliance.faces.api.xapi.app) answered before it; with a content origin, a request on the wrong host for
    its path is refused before all of them (appliance.faces.api.hosts).

    Overriding `__call__` is the one way to reach a request before the framework's per-request steps
    (its scope set-up and `before_send` wrapper, then our access-log middleware), which together cost a
    commit about a fifth of its server time.
    """

    commits: CommitEndpoint | None = None
    xapi: XapiApp | None = None
    hosts: HostRouter | None = None  # the content origin's host routing; None in single-origin mode

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self.hosts is not None and (answer := self.hosts.answer_for(scope)) is not None:
                await self.hosts.send(scope, send, answer)  # the wrong host for this path (appliance.faces.api.hosts)
                return
            if scope["method"] == "POST" and self.commits is not None:
                token = commit_token(scope["path"])
                if token is not None and self.commits.ready():
                    await self.commits(scope, receive, send, token)
                    return
            if self.xapi is not None and xapi_path(scope["path"]) and self.xapi.ready():
                await self.xapi(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(config: Config, *, clock: Clock | None = None, start_scheduler: bool = True) -> Appliance:
    """Build the application for `config`. The data directory is prepared in the lifespan."""

    commits = CommitEndpoint(config.max_request_header_bytes, config.frame_ancestors)
    hosts = host_router(config.content_origin, config.public_url)  # a bad pairing stops the start here
    xapi = XapiApp(config.max_request_header_bytes)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        inst = Instance(config, clock)
        tmp_lease = inst.data.clean_tmp()
        app.state.instance = inst
        app.state.jwks = JwksCache(config.jwks_cache_seconds, outbound.policy_for(config.outbound_allow))
        app.state.rate_limiter = api_limiter(config)
        app.state.learner_limiter = learner_limits(config)
        app.state.auth_failures = auth_failure_limiter(
            config, "api", config.auth_failures_per_minute, config.auth_block_seconds
        )
        commits.start(inst, app.state.learner_limiter)
        xapi.start(inst, app.state.auth_failures)
        app.state.usage_counter = counter = RequestCounter()
        scheduler = build_scheduler(inst)
        scheduler.every("flush-usage", config.usage_flush_seconds, counter.flush)
        app.state.scheduler = scheduler
        if start_scheduler:
            await scheduler.start()
        try:
            yield
        finally:
            commits.stop()
            xapi.stop()
            await scheduler.stop(timeout=30.0)
            counter.flush(inst)  # the API requests counted since the last batched write
            inst.close()
            inst.data.release_tmp(tmp_lease)

    app = Appliance(
        route_handlers=[*ROUTE_HANDLERS, swagger_assets_router(), static_router(), console_router()],
        template_config=template_config(),  # the admin console's pages (appliance.faces.console)
        dependencies={"inst": Provide(provide_instance, sync_to_thread=False), "principal": Provide(provide_principal)},
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_request_id],
        middleware=[header_limit_middleware(config.max_request_header_bytes)],
        lifespan=[lifespan],
        openapi_config=openapi_config(),
        debug=False,
        logging_config=None,  # `serve` configures logging (appliance.logging_setup)
    )
    # The access log is outermost, so that unmatched routes (404, 405) get their access line too
    # (Litestar's own middleware only runs for matched routes). Commits never reach it: they are
    # answered in `Appliance.__call__`, with their own access line.
    app.asgi_handler = access_log_middleware(app.asgi_handler)
    app.commits = commits
    app.hosts = hosts
    app.xapi = xapi
    return app
