"""The tenant migrations' steps, one module per domain (as appliance/services/ is): the tables a domain
owns read together, and a domain's new step goes beside its others. The order they run in is
appliance.storage.sqlite.tenant_schema's."""
