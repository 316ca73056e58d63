"""The xAPI rules as pure functions (no I/O): statement validation, agents, formats, versions.

The LRS (appliance.services.lrs) and its HTTP face (appliance.faces.api.xapi) call these; tests call them directly.
"""
