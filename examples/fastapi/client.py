"""Call the API the way a browser or another service would: python client.py

API_URL (default http://127.0.0.1:8000) says where the API runs.
"""

import json
import os
import urllib.error
import urllib.request

API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000")


def call(method, path, body=None):
    request = urllib.request.Request(
        API_URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


for method, path, body in [
    ("GET", "/stock/tea", None),
    ("GET", "/stock/coffee", None),
    ("GET", "/stock?items=tea,cake", None),
    ("POST", "/orders", {"item": "cake", "quantity": 2}),
    ("POST", "/orders", {"item": "cake", "quantity": 1}),
]:
    status, data = call(method, path, body)
    print(f"{method} {path} -> {status} {data}")
