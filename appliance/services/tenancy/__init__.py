"""Who may do what: tenants, API keys, JWTs, admins and roles, quotas, usage and rate limits."""
