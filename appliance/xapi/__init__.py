"""The xAPI rules as pure functions (no I/O): statement validation, agents, formats, versions.

The LRS (appliance.lrs) and its HTTP face (appliance.api.xapi) call these; tests call them directly.
"""
