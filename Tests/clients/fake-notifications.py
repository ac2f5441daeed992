#!/usr/bin/env python3
"""A stand-in for Altinn's Notifications API, for the client cookbook's tests.

POST /notifications/api/v1/orders answers 401 to the first request when started with
--first-401 (as Altinn does for a token it no longer accepts), then 201 with an order id.
Every request is logged to --log as one JSON line: status, the token's exp and whether the
body is a notification order. The token itself is never written down.
Prints the port it listens on, then serves until killed.
"""
import argparse
import base64
import http.server
import json
import time
import uuid

parser = argparse.ArgumentParser()
parser.add_argument("--log", required=True)
parser.add_argument("--first-401", action="store_true")
arguments = parser.parse_args()
requests = 0


def token_exp(authorization):
    """The exp claim of a Bearer JWT, or None when it is not one."""
    if not authorization.startswith("Bearer "):
        return None
    parts = authorization[len("Bearer "):].split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(payload)).get("exp")
    except ValueError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global requests
        requests += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            order = json.loads(body)
            is_order = bool(order.get("recipients")) and "emailTemplate" in order
        except ValueError:
            is_order = False
        exp = token_exp(self.headers.get("Authorization", ""))
        if self.path != "/notifications/api/v1/orders":
            status, answer = 404, {"title": "Not Found"}
        elif exp is None or exp < time.time():
            status, answer = 401, {"title": "Unauthorized"}
        elif arguments.first_401 and requests == 1:
            status, answer = 401, {"title": "Unauthorized", "detail": "the token is no longer accepted"}
        elif not is_order:
            status, answer = 400, {"title": "Bad Request"}
        else:
            status, answer = 201, {"orderId": str(uuid.uuid4()), "recipientLookup": None}
        with open(arguments.log, "a") as log:
            log.write(json.dumps({"status": status, "exp": exp, "order": is_order}) + "\n")
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 201 else "application/problem+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
