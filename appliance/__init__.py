"""scorm-appliance: a self-hosted SCORM API server."""

__version__ = "0.1.0"
