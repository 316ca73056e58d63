"""The admin console at `/admin`: server-rendered pages over the same service functions as the API and
the CLI (appliance.services.tenancy.tenants, packages, sessions, analytics, webhooks, apikeys, usage, backup …).

`routes.console_router()` is what appliance.faces.app registers; `auth` holds the session cookie, the CSRF
check and the tenant scope every page goes through; `views` has one module per noun; `charts` draws
the analytics as SVG on the server (no chart library, no script needed to see them).
"""
