"""Keeping an installation healthy: backups and restores, `doctor`."""
