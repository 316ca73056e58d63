"""Work done later and sent out: the durable job queue and scheduler, domain events, webhooks, the outbound guard."""
