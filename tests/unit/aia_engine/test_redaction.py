"""What an error may echo: never the value of a secret-bearing field, nor a URL's password."""

from __future__ import annotations

from aia_engine.redaction import REDACTED, is_secret_name, redact_error


def test_secret_bearing_names() -> None:
    for name in ("secret", "client_secret", "refresh_token", "access_token", "token", "password",
                 "new_password", "api_key", "apiKey", "X-API-Key", "Authorization", "private_key",
                 "credentials", "webhooks.secret", "tasks.0.context.password"):  # fmt: skip
        assert is_secret_name(name), name
    for name in ("webhook_url", "events", "user_id", "description", "task_type", "limit", "field"):
        assert not is_secret_name(name), name


def test_the_value_of_a_secret_field_is_not_echoed() -> None:
    message, details = redact_error(
        "secret: String should have at least 16 characters",
        {"field": "secret", "issue": "too short", "provided_value": "short-secret-xy",
         "errors": [{"field": "secret", "issue": "too short"}]},
    )  # fmt: skip
    assert details["provided_value"] == REDACTED and details["field"] == "secret"
    assert details["errors"] == [{"field": "secret", "issue": "too short"}]
    assert "short-secret-xy" not in message + repr(details)


def test_secret_keys_inside_an_echoed_object_are_redacted_at_any_depth() -> None:
    body = {"events": ["task.completed"], "secret": "a-very-long-secret-value",
            "nested": [{"password": "hunter2hunter2"}], "keep": "visible"}  # fmt: skip
    _, details = redact_error(
        "webhook_url: Field required", {"field": "webhook_url", "provided_value": body}
    )
    shown = details["provided_value"]
    assert shown["secret"] == REDACTED and shown["nested"][0]["password"] == REDACTED
    assert shown["keep"] == "visible" and shown["events"] == ["task.completed"]
    assert body["secret"] == "a-very-long-secret-value"  # the caller's object is left alone


def test_url_passwords_are_masked_in_messages_and_details() -> None:
    url = "https://user:hunter2hunter2@hooks.example/a"
    message, details = redact_error(
        f"webhook_url {url!r} is refused: user information in the URL is not accepted",
        {"field": "webhook_url", "provided_value": url},
    )
    assert "hunter2hunter2" not in message + repr(details)
    assert "hooks.example/a" in message and "user" not in details["provided_value"]


def test_the_secret_value_is_masked_wherever_else_it_appears() -> None:
    message, details = redact_error(
        "refresh_token 'rt_abcdef123456' is unknown",
        {"field": "refresh_token", "provided_value": "rt_abcdef123456", "hint": "rt_abcdef123456"},
    )
    assert "rt_abcdef123456" not in message + repr(details)
