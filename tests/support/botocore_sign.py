#!/usr/bin/env python3
"""Signs one HTTP request with botocore's SigV4Auth at a fixed time, for tests.

  botocore_sign.py [REQUEST.json] < request.json

The request is one JSON document, in the file named, else on stdin:
  {"method": "POST", "url": "http://127.0.0.1:9324/",
   "headers": [["Host", "..."], ["Content-Type", "..."], ...],
   "body": "text (UTF-8)", "amz_date": "20150830T123600Z",
   "access_key": "...", "secret_key": "...", "token": null or "...",
   "service": "sqs", "region": "us-east-1"}
Prints one JSON document: {"Authorization", "X-Amz-Date", "X-Amz-Security-Token",
"canonical_request", "string_to_sign"}. The keys are read from the document,
not the command line, so they appear in no process listing.

botocore >= 1.33 reads the time through botocore.auth.get_current_datetime;
older ones (Debian 12 has 1.29) call datetime.datetime.utcnow() in
botocore.auth: either is patched to return amz_date.
"""

import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def fixed_clock(when):
    if hasattr(botocore.auth, "get_current_datetime"):
        return mock.patch.object(botocore.auth, "get_current_datetime", return_value=when)
    fake = mock.MagicMock()
    fake.datetime.utcnow.return_value = when
    fake.datetime.strptime = datetime.datetime.strptime
    return mock.patch.object(botocore.auth, "datetime", fake)


class RecordingAuth(SigV4Auth):
    """SigV4Auth that keeps the canonical request and string to sign it signed."""

    def canonical_request(self, request):
        self.canonical = super().canonical_request(request)
        return self.canonical

    def string_to_sign(self, request, canonical_request):
        self.to_sign = super().string_to_sign(request, canonical_request)
        return self.to_sign


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as source:
            spec = json.load(source)
    else:
        spec = json.load(sys.stdin)
    request = AWSRequest(
        method=spec["method"],
        url=spec["url"],
        data=spec.get("body", "").encode("utf-8"),
        headers=dict(spec.get("headers", [])),
    )
    credentials = Credentials(spec["access_key"], spec["secret_key"], spec.get("token"))
    auth = RecordingAuth(credentials, spec["service"], spec["region"])
    when = datetime.datetime.strptime(spec["amz_date"], "%Y%m%dT%H%M%SZ")
    with fixed_clock(when):
        auth.add_auth(request)
    json.dump(
        {
            "Authorization": request.headers["Authorization"],
            "X-Amz-Date": request.headers["X-Amz-Date"],
            "X-Amz-Security-Token": request.headers.get("X-Amz-Security-Token"),
            "canonical_request": auth.canonical,
            "string_to_sign": auth.to_sign,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
