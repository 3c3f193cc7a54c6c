"""Publishing the `task_events` log: the pump, the public event body, stream replay."""
