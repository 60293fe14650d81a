"""Cron schedules the database owns (``jobs.models.Schedule``), timed by rq-scheduler.

The table is the truth; rq-scheduler holds a copy. Each enabled row is one rq-scheduler cron
entry with the stable id ``schedule-<name>``, and the loop diffs Redis against the table every
cycle (``sync``). A schedule names a registered request function and its JSON arguments (see
``jobs.request_functions``), so a scheduled run asks for its job exactly as the admin's button
or a command does. The cron entry calls ``fire.fire``; a ``ScheduleFire`` row makes each fire
run once whoever asks.

Permissions follow the work, not the door: writes (create, update, enable, run now) need the
schedule permission *and* every permission the request declares; a cron fire runs as the
person who last changed the schedule, while they still hold those permissions.

One module per concern, from the bottom up:

- ``cron``: cron lines checked, next and previous runs, in words (pure)
- ``defaults``: the settings' schedules as field values (pure data, read by a migration)
- ``scheduler_heartbeat``: what the scheduler loop writes to Redis each cycle (not job heartbeats)
- ``status``: the scheduler as people see it (heartbeat age, active instance)
- ``scheduler``: the rq-scheduler ``Scheduler`` we run
- ``validation``, ``permissions``: a schedule's fields checked; who may write or run it
- ``fire``: the cron entry point (once per fire, within the grace period, as the last editor)
- ``sync``: rq-scheduler made to hold exactly the enabled rows
- ``store``: create, update, enable, load the defaults, look up
- ``run_now``: run a schedule's request on demand
- ``listing``: each schedule with its next run and last job, for the admin and GraphQL
- ``loop``: the scheduler process (one active instance, a lock, never dying of Redis)
"""
