"""The cmi5 rules as pure functions (no I/O): the course structure (cmi5.xml) and moveOn satisfaction.

cmi5 (https://github.com/AICC/CMI-5_Spec_Current) is the xAPI profile that authoring tools export as
SCORM's successor. The package service reads a course structure with `course_structure`, and the
registrations evaluate `move_on` after each statement an AU or the LMS writes.
"""
