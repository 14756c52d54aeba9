"""What each platform's jobs mean, below operators, sensors and triggers.

``jobs/<platform>.py`` holds the platform's status table(s), outcome/raw-state functions, result
summaries, the error raised for a failed job and the small mixins (hook per task run, fetch/outcome/
raw_state/failed) that its operators and sensors share. It imports hooks and core only, never
triggers, sensors or operators.
"""
