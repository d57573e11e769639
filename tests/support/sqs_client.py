#!/usr/bin/env python3
"""A small SQS client for the tests, on boto3, against ElasticMQ.

  sqs_client.py send QUEUE_URL BODY [--group G] [--dedup ID] [--delay S] [--attr N=V ...]
  sqs_client.py receive QUEUE_URL [--max N] [--wait S] [--visibility S] [--delete]
  sqs_client.py count QUEUE_URL

Each prints one JSON document on stdout: send {"MessageId": ...}; receive a
list of {"MessageId", "Body", "ReceiptHandle", "ReceiveCount", "GroupId",
"MessageAttributes" (name: string value)};
count {"visible", "not_visible", "delayed"}. The endpoint is the queue URL's
scheme, host and port; the credentials are fake (ElasticMQ checks none).
Exits 1 with the error on stderr when a call fails.
"""

import argparse
import json
import sys
from urllib.parse import urlsplit

import boto3
from botocore.config import Config


def client_for(queue_url):
    parts = urlsplit(queue_url)
    return boto3.client(
        "sqs",
        endpoint_url=f"{parts.scheme}://{parts.netloc}",
        region_name="us-east-1",
        aws_access_key_id="mailroom-test",
        aws_secret_access_key="mailroom-test",
        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
    )


def send(args):
    params = {"QueueUrl": args.queue_url, "MessageBody": args.body}
    if args.group is not None:
        params["MessageGroupId"] = args.group
    if args.dedup is not None:
        params["MessageDeduplicationId"] = args.dedup
    if args.delay is not None:
        params["DelaySeconds"] = args.delay
    if args.attr:
        params["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (a.split("=", 1) for a in args.attr)
        }
    reply = client_for(args.queue_url).send_message(**params)
    return {"MessageId": reply["MessageId"]}


def receive(args):
    sqs = client_for(args.queue_url)
    messages = []
    # Up to 10 a call: call again until --max came or a call brings none.
    while len(messages) < args.max:
        params = {
            "QueueUrl": args.queue_url,
            "MaxNumberOfMessages": min(10, args.max - len(messages)),
            "WaitTimeSeconds": args.wait,
            "AttributeNames": ["ApproximateReceiveCount", "MessageGroupId"],
            "MessageAttributeNames": ["All"],
        }
        if args.visibility is not None:
            params["VisibilityTimeout"] = args.visibility
        batch = sqs.receive_message(**params).get("Messages", [])
        if not batch:
            break
        for m in batch:
            attributes = m.get("Attributes", {})
            messages.append(
                {
                    "MessageId": m["MessageId"],
                    "Body": m["Body"],
                    "ReceiptHandle": m["ReceiptHandle"],
                    "ReceiveCount": int(attributes.get("ApproximateReceiveCount", "0")),
                    "GroupId": attributes.get("MessageGroupId"),
                    "MessageAttributes": {
                        name: v.get("StringValue", v.get("BinaryValue"))
                        for name, v in m.get("MessageAttributes", {}).items()
                    },
                }
            )
            if args.delete:
                sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def count(args):
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    reply = client_for(args.queue_url).get_queue_attributes(
        QueueUrl=args.queue_url, AttributeNames=names
    )
    a = reply["Attributes"]
    return {
        "visible": int(a.get(names[0], "0")),
        "not_visible": int(a.get(names[1], "0")),
        "delayed": int(a.get(names[2], "0")),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("send", help="send one message")
    p.add_argument("queue_url")
    p.add_argument("body")
    p.add_argument("--group", help="MessageGroupId (FIFO queues)")
    p.add_argument("--dedup", help="MessageDeduplicationId (FIFO queues)")
    p.add_argument("--delay", type=int, help="DelaySeconds")
    p.add_argument("--attr", action="append", help="a String message attribute NAME=VALUE")
    p.set_defaults(run=send)

    p = commands.add_parser("receive", help="receive up to --max messages")
    p.add_argument("queue_url")
    p.add_argument("--max", type=int, default=10)
    p.add_argument("--wait", type=int, default=1, help="WaitTimeSeconds of each call")
    p.add_argument("--visibility", type=int, help="VisibilityTimeout of the received")
    p.add_argument("--delete", action="store_true", help="delete what was received")
    p.set_defaults(run=receive)

    p = commands.add_parser("count", help="count the queue's messages")
    p.add_argument("queue_url")
    p.set_defaults(run=count)

    args = parser.parse_args()
    try:
        result = args.run(args)
    except Exception as error:  # noqa: BLE001 - a CLI for tests: say it and fail
        print(f"sqs_client: {args.command} failed: {error}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
