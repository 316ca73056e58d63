"""Learners at work: sessions, the run-time behind the player, sequencing, analytics, cmi5 registrations."""
