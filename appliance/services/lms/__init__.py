"""Other learning platforms: LTI 1.3 (tool side, AGS, NRPS, deep linking) and dispatch packages."""
