"""The built-in xAPI LRS per tenant: credentials, statements, documents, SCORM as xAPI, forwarding.

Services over the tenant's own database (statements and documents) and the registry (credentials);
the rules they apply live in appliance.core.xapi, the HTTP face in appliance.faces.api.xapi.
"""
