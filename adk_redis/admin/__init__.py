"""The ``adk-redis`` admin commands, one module each; :mod:`adk_redis.admin.cli` parses and dispatches.

- :mod:`.common`: exit codes, ``CliError``, results, progress
- :mod:`.errors`: exception -> exit code
- :mod:`.sessions`: ``stats``, ``sessions list|show|delete``, ``bench``
- :mod:`.backup` (commands) and :mod:`.transfer` (format and work): ``export`` / ``import``
- :mod:`.migrate`: ``migrate`` and ``import --from``
- :mod:`.cleanup`: ``cleanup``
- :mod:`.doctor`: ``doctor``
"""
