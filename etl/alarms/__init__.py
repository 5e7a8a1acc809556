"""Alarms: the operational database, its migrations, the rules engine, the notifications outbox.

Detectors (the marts, the stream job) report *conditions*; `engine.apply` turns them into alarms
under per-type rules; `outbox.deliver_outbox` sends each alarm state change once. People act on
alarms (acknowledge, silence) through `actions`, from the CLI or the dashboard. docs/alarms.md.
"""
