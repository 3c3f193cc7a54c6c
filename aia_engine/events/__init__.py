"""Publishing the `task_events` log: the pump, the public event body, stream replay, and the
fan-out that turns an outgoing event (a task event or a `system.alert`) into delivery rows."""
