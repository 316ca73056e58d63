"""The LTI 1.3 Advantage tool: how a Moodle, Canvas, Blackboard, Brightspace or Open edX course launches
the appliance's packages.

- `registrations`: a tenant's platforms (issuer, client id, deployment ids, JWKS, OIDC and token URLs);
- `keys`: the tenant's own signing keys, published as a JWKS, rotated with a grace period;
- `launch`: OIDC third-party login initiation (state and nonce kept server-side, no cookie), id_token
  validation against the platform's JWKS, and the resource link launch into a session;
- `deep_linking`: the teacher picks a package; the tool answers with a signed `ltiResourceLink`;
- `ags`: Assignment and Grade Services, line item per link and scores through durable jobs.

Every outbound call (platform JWKS, token endpoint, line items, scores) goes through
appliance.services.delivery.outbound. The HTTP routes are in appliance.faces.api.lti; docs/lti.md is the operator's guide.
"""
