"""The course library: uploads, safe archives, package analysis and versions, content serving."""
