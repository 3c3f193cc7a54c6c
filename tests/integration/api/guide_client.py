"""The API guide's Python client, copied unchanged from "Code Examples for Authentication"."""
# ruff: noqa
# mypy: ignore-errors
import requests
import json
from datetime import datetime, timedelta
from typing import Optional

class AIAAPIClient:
    def __init__(self, client_id: str, client_secret: str, base_url: str = "https://api.013a.tech"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.base_url = base_url
        self.access_token = None
        self.token_expires = None
        self.refresh_token = None

    def authenticate(self) -> bool:
        """Obtain access token from AIA API"""
        auth_url = f"{self.base_url}/auth/token"

        data = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": "read write"
        }

        try:
            response = requests.post(auth_url, data=data, timeout=30)
            response.raise_for_status()

            token_data = response.json()
            self.access_token = token_data["access_token"]
            self.refresh_token = token_data.get("refresh_token")
            self.token_expires = datetime.now() + timedelta(seconds=token_data["expires_in"] - 60)

            return True
        except requests.RequestException as e:
            print(f"Authentication failed: {e}")
            return False

    def _get_headers(self) -> dict:
        """Get headers with valid access token"""
        if not self.access_token or datetime.now() >= self.token_expires:
            if not self.authenticate():
                raise Exception("Failed to authenticate with AIA API")

        return {
            "Authorization": f"Bearer {self.access_token}",
            "Content-Type": "application/json",
            "Accept": "application/json"
        }

    def make_request(self, method: str, endpoint: str, data: Optional[dict] = None) -> dict:
        """Make authenticated request to AIA API"""
        url = f"{self.base_url}{endpoint}"
        headers = self._get_headers()

        try:
            if method.upper() == "GET":
                response = requests.get(url, headers=headers, timeout=30)
            elif method.upper() == "POST":
                response = requests.post(url, headers=headers, json=data, timeout=30)
            elif method.upper() == "PUT":
                response = requests.put(url, headers=headers, json=data, timeout=30)
            elif method.upper() == "DELETE":
                response = requests.delete(url, headers=headers, timeout=30)
            else:
                raise ValueError(f"Unsupported HTTP method: {method}")

            response.raise_for_status()
            return response.json() if response.content else {}

        except requests.RequestException as e:
            print(f"API request failed: {e}")
            if hasattr(e, 'response') and e.response is not None:
                print(f"Response: {e.response.text}")
            raise

