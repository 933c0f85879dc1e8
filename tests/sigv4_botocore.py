"""Signs requests with botocore's SigV4, an implementation independent of ours, for
tests/sigv4.rs.

Reads a JSON list of requests on standard input (method, url, headers, body, time as Unix
seconds, credentials, region) and prints a JSON list of the headers botocore signed them
with, in the same order.
"""

import datetime
import json
import sys

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed(case):
    at = datetime.datetime.fromtimestamp(case["time"], tz=datetime.timezone.utc)
    # add_auth reads the clock through this module-level name; the case fixes it.
    botocore.auth.get_current_datetime = lambda *args, **kwargs: at
    credentials = Credentials(case["key_id"], case["secret"], case.get("token"))
    request = AWSRequest(
        method=case["method"],
        url=case["url"],
        headers=case["headers"],
        data=case["body"].encode(),
    )
    SigV4Auth(credentials, "lambda", case["region"]).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


json.dump([signed(case) for case in json.load(sys.stdin)], sys.stdout)
