"""The API guide's locustfile ("Load Testing with Locust"), unchanged but for two things: the
host is given on the command line (`--host http://127.0.0.1:PORT`), and the credentials come
from AIA_LOCUST_CLIENT_ID / AIA_LOCUST_CLIENT_SECRET instead of the guide's placeholders.
Run it with `python -m bench.bench_locust` (see bench/README.md)."""

import os

from locust import HttpUser, task, between

class AIAAPIUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        """Authenticate user on start"""
        self.authenticate()

    def authenticate(self):
        """Get authentication token"""
        response = self.client.post("/auth/token", data={
            "grant_type": "client_credentials",
            "client_id": os.environ["AIA_LOCUST_CLIENT_ID"],
            "client_secret": os.environ["AIA_LOCUST_CLIENT_SECRET"],
            "scope": "read write"
        })

        if response.status_code == 200:
            token_data = response.json()
            self.token = token_data["access_token"]
            self.client.headers.update({
                "Authorization": f"Bearer {self.token}"
            })

    @task(3)
    def check_health(self):
        """Health check endpoint load test"""
        self.client.get("/health")

    @task(2)
    def submit_task(self):
        """Task submission load test"""
        task_data = {
            "task_type": "load_test",
            "description": "Load testing task",
            "priority": "low"
        }
        response = self.client.post("/tasks/submit", json=task_data)

        if response.status_code == 200:
            task_id = response.json()["task_id"]
            # Check task status
            self.client.get(f"/tasks/{task_id}")

    @task(1)
    def query_knowledge_graph(self):
        """Knowledge graph query load test"""
        query_data = {
            "query": "MATCH (n) RETURN count(n) LIMIT 1",
            "format": "json"
        }
        self.client.post("/knowledge-graph/query", json=query_data)
