"""`aia-engine clients ...`: provisioning API clients (OAuth2 client credentials)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.common import resolved_settings


def _sessions() -> Any:
    from aia_engine.db.session import make_engine, make_sessions

    return make_sessions(make_engine(resolved_settings(), pool_size=1))


def cmd_clients_create(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import create_client

    client = create_client(_sessions(), name=args.name, tier=args.tier, scopes=args.scopes)
    record = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "name": client.name,
        "tier": client.tier,
        "scopes": " ".join(client.scopes),
    }
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            print(f"{key:<14} {value}")
        print(
            "\nStore the secret now: it is shown only once (rotate it with `clients rotate-secret`)."
        )
    return 0


def cmd_clients_list(_args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import list_clients

    rows = list_clients(_sessions())
    if not rows:
        print("no clients yet; create one with: aia-engine clients create --name NAME")
    for row in rows:
        state = "active" if row["active"] else "DISABLED"
        print(
            f"{row['client_id']:<26} {state:<9} {row['tier']:<11} {row['scopes']:<18} {row['name']}"
        )
    return 0


def cmd_clients_disable(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import set_active

    set_active(_sessions(), args.client_id, False)
    print(f"client {args.client_id} disabled")
    return 0


def cmd_clients_enable(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import set_active

    set_active(_sessions(), args.client_id, True)
    print(f"client {args.client_id} enabled")
    return 0


def cmd_clients_rotate(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import rotate_secret

    print(f"client_secret  {rotate_secret(_sessions(), args.client_id)}")
    print("The old secret no longer works. Store this one now: it is shown only once.")
    return 0
