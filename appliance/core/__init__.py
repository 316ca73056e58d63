"""The rules, pure and without I/O: SCORM 1.2/2004 (manifests, data model, sequencing), cmi5 and xAPI."""
